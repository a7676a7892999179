"""Fixtures of the hyperopt adapter tests: declared CPU slots and a private device pool."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from hwaware_plugins.executors import LocalExecutor
from hwaware_plugins.hardware import Device
from hwaware_plugins.hardware._pool import DevicePool
from tests._procs import stray_children

_names = itertools.count()


def cpus(n: int, name: str = "cpu") -> list[Device]:
    """``n`` single-core CPU slots of one class."""
    return [Device(id=f"{name}:{i}", kind="cpu", name=name, cores=1) for i in range(n)]


@pytest.fixture
def make_executor(tmp_path: Path) -> Iterator[Callable[..., LocalExecutor]]:
    """Local executors over private pools; all leases must be back at the end."""
    made: list[tuple[LocalExecutor, DevicePool]] = []

    def build(devices: Any = None, **options: Any) -> LocalExecutor:
        pool = DevicePool(devices or cpus(3), name=f"hyperopt-{next(_names)}",
                          state_dir=tmp_path, skip_foreign_processes=False)
        executor = LocalExecutor(pool, kill_grace_s=0.5, **options)
        made.append((executor, pool))
        return executor

    yield build
    for executor, pool in made:
        executor.shutdown(wait=True, cancel_running=True)
        assert pool.active_leases() == []


@pytest.fixture(autouse=True)
def _no_children_left() -> Iterator[None]:
    """No test may leave a worker process behind."""
    baseline = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    alive = stray_children(baseline)
    assert alive == [], f"processes left behind: {alive}"
