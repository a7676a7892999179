"""Fixtures of the executor tests: declared devices and a private device pool."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from hwaware_plugins.hardware import Device
from hwaware_plugins.hardware._pool import DevicePool
from tests._procs import stray_children

_names = itertools.count()


def gpu(ident: str, memory_mb: int, uuid: str, index: int) -> Device:
    """A declared GPU; the worker only sees its UUID in CUDA_VISIBLE_DEVICES."""
    return Device(id=ident, kind="gpu", name=f"Test GPU {memory_mb}", uuid=uuid,
                  memory_total_mb=memory_mb, index=index)


GPUS = (
    gpu("gpu-small", 4000, "GPU-00000000-0000-0000-0000-000000000001", 0),
    gpu("gpu-mid", 8000, "GPU-00000000-0000-0000-0000-000000000002", 1),
    gpu("gpu-big", 16000, "GPU-00000000-0000-0000-0000-000000000003", 2),
)


@pytest.fixture
def make_pool(tmp_path: Path) -> Iterator[Callable[..., DevicePool]]:
    """Build pools with private state; every lease must be back when the test ends."""
    pools: list[DevicePool] = []

    def build(devices: Any = GPUS, **options: Any) -> DevicePool:
        pool = DevicePool(list(devices), name=f"exec-{next(_names)}", state_dir=tmp_path,
                          skip_foreign_processes=False, **options)
        pools.append(pool)
        return pool

    yield build
    for pool in pools:
        assert pool.active_leases() == []


@pytest.fixture(autouse=True)
def _no_children_left() -> Iterator[None]:
    """Every test must leave no child process of this interpreter behind.

    Children that already existed before the test (e.g. multiprocessing's resource
    tracker started by an earlier test module) are not this test's doing.
    """
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    alive = stray_children(before)
    assert alive == [], f"processes left behind: {alive}"
