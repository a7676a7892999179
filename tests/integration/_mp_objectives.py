"""Tiny objectives the integration tests' worker processes import (``_mp_objectives:NAME``)."""

from __future__ import annotations

import os

import optuna

RUN_LOG_ENV = "HWAWARE_TEST_RUN_LOG"
"""File each objective call appends ``<trial number> <pid>`` to (proves each ran once)."""


def quadratic(trial: optuna.trial.Trial) -> float:
    """``(x - 0.3)^2``; records the call and the pinning it saw."""
    x = trial.suggest_float("x", -1.0, 1.0)
    trial.set_user_attr("cuda_visible", os.environ.get("CUDA_VISIBLE_DEVICES"))
    log = os.environ.get(RUN_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{trial.number} {os.getpid()}\n")
    return (x - 0.3) ** 2
