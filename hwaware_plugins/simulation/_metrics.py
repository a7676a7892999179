"""Metrics of a simulated run (pure functions of a :class:`RunResult`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hwaware_plugins.simulation._engine import RunResult


def models_per_hour(run: RunResult) -> float:
    """Completed trials per virtual hour of the budget."""
    return len(run) / (run.budget_s / 3600.0)


def time_to_target(run: RunResult, target: float) -> float | None:
    """Virtual seconds until the first trial with ``loss <= target`` ended, or ``None``."""
    hits = np.flatnonzero(run.loss <= target)
    return float(run.end[hits[0]]) if hits.size else None


def best_loss(run: RunResult, at_s: float | None = None) -> float:
    """Lowest loss among trials ended by ``at_s`` (default: the budget); NaN if none."""
    if at_s is None:
        return float(run.loss.min()) if len(run) else math.nan
    return float(best_loss_curve(run, [at_s])[0])


def best_loss_curve(run: RunResult, times_s: Sequence[float]) -> np.ndarray:
    """Best loss so far at each time (NaN before the first completed trial). O(n + T log n)."""
    if not len(run):
        return np.full(len(times_s), math.nan)
    running = np.minimum.accumulate(run.loss)
    done = np.searchsorted(run.end, np.asarray(times_s, dtype=float), side="right")
    out = np.full(len(times_s), math.nan)
    seen = done > 0
    out[seen] = running[done[seen] - 1]
    return out
