"""Metrics of a simulated run (pure functions of a :class:`RunResult`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hwaware_plugins.hardware._device import Device
from hwaware_plugins.simulation._engine import RunResult
from hwaware_plugins.simulation._table import TrialTable


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


def time_to_target_floor(
    table: TrialTable, slots: Sequence[Device], target: float
) -> float | None:
    """The soonest any scheduler could reach ``target``, in virtual seconds; ``None`` if never.

    Every trial starts at time 0 at the earliest and runs ``runtime_s /
    speed_for(family)``, so no run ends a trial with ``loss <= target`` before
    the fastest such row on the slot fastest for its family. A time-to-target
    ratio against a baseline can therefore never exceed ``baseline / floor``.
    Cost: O(rows + subspaces x slots).
    """
    floor: float | None = None
    for sub in table.subspaces:
        hits = sub.runtimes[sub.losses <= target]
        if hits.size == 0:
            continue
        fastest = max(d.speed_for(sub.family) for d in slots)
        candidate = float(hits.min()) / fastest
        floor = candidate if floor is None else min(floor, candidate)
    return floor
