"""Shared pieces of the optuna adapter tests: declared GPUs and a conditional objective."""

from __future__ import annotations

import math

import optuna

from hwaware_plugins.hardware import Device


def gpu(index: int, device_class: str = "G", memory_mb: int = 1000) -> Device:
    """A declared GPU (no real GPU needed)."""
    return Device(
        id=f"gpu:{index}",
        kind="gpu",
        name=device_class,
        uuid=f"GPU-{index}",
        index=index,
        memory_total_mb=memory_mb,
        memory_free_mb=memory_mb,
        host="test-host",
    )


def two_branch(trial: optuna.trial.Trial) -> float:
    """A conditional objective: an "svm" branch using C, a "forest" branch using depth."""
    classifier = trial.suggest_categorical("classifier", ["svm", "forest"])
    if classifier == "svm":
        c = trial.suggest_float("C", 1e-3, 1e3, log=True)
        return abs(math.log10(c)) / 3
    depth = trial.suggest_int("depth", 1, 10)
    return 0.2 + depth / 20
