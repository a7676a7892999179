"""Objectives for ``bench_parallel.py``, in a module that imports what a real one imports.

A real objective module imports its framework and numpy (and often torch) at the top,
so every process that runs a trial pays for those imports once: this one imports numpy
and the framework named by ``HWAWARE_BENCH_FRAMEWORK`` (``optuna``, ``hyperopt`` or
``ray.tune``; the benchmark sets it per path). Set ``HWAWARE_BENCH_TORCH=1`` to import
torch too. Each call sleeps
``HWAWARE_BENCH_SLEEP`` seconds (the fixed trial duration) and appends one line
``pid thread start end`` to the file named by ``HWAWARE_BENCH_LOG``, from which the
benchmark computes how many trials ran at once and the gap between consecutive
trials of one worker (the per-trial overhead after warm-up).
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from typing import Any

import numpy as np

importlib.import_module(os.environ.get("HWAWARE_BENCH_FRAMEWORK", "optuna"))

if os.environ.get("HWAWARE_BENCH_TORCH") == "1":
    import torch  # noqa: F401


def _log(start: float, end: float) -> None:
    path = os.environ.get("HWAWARE_BENCH_LOG")
    if path:
        line = f"{os.getpid()} {threading.get_ident()} {start:.6f} {end:.6f}\n"
        with open(path, "a", encoding="ascii") as handle:
            handle.write(line)


def _sleep_trial(x: float) -> float:
    start = time.time()
    time.sleep(float(os.environ.get("HWAWARE_BENCH_SLEEP", "0.5")))
    _log(start, time.time())
    return float(np.square(x))


def optuna_objective(trial: Any) -> float:
    """A fixed-duration Optuna objective."""
    return _sleep_trial(trial.suggest_float("x", -1.0, 1.0))


def hyperopt_objective(point: dict[str, Any]) -> float:
    """A fixed-duration Hyperopt objective."""
    return _sleep_trial(float(point["x"]))


def ray_objective(config: dict[str, Any]) -> None:
    """A fixed-duration Ray Tune function trainable."""
    from ray import tune

    tune.report({"loss": _sleep_trial(float(config["x"]))})


def _square_sum(i: int) -> float:
    return float(np.square(np.arange(20_000, dtype=np.float64) + i).sum())


def joblib_objective(trial: Any) -> float:
    """An objective that uses every core through joblib, as scikit-learn's ``n_jobs=-1`` does."""
    from joblib import Parallel, delayed

    x = trial.suggest_float("x", -1.0, 1.0)
    start = time.time()
    parts = Parallel(n_jobs=-1)(delayed(_square_sum)(i) for i in range(16))
    _log(start, time.time())
    return float(x * x + 1e-12 * sum(parts))
