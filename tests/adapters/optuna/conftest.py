"""Fixtures of the optuna adapter tests: declared devices and a sampler factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from hwaware_optuna import HardwareAwareSampler

from hwaware_plugins.hardware import Device

from ._helpers import gpu

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def gpus() -> list[Device]:
    """Three exclusive GPU slots of one class."""
    return [gpu(i) for i in range(3)]


@pytest.fixture
def make_sampler(tmp_path: Path, gpus: list[Device]) -> Callable[..., HardwareAwareSampler]:
    """Build a sampler on the three GPUs (seed 0) with a private pool state folder."""

    def make(**kwargs: Any) -> HardwareAwareSampler:
        kwargs.setdefault("devices", gpus)
        kwargs.setdefault("seed", 0)
        kwargs.setdefault("state_dir", tmp_path / "pool")
        return HardwareAwareSampler(**kwargs)

    return make
