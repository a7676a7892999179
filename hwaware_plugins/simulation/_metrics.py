"""Metrics of a simulated run (pure functions of a :class:`RunResult`) and quality targets."""

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


def time_to_target_floor(table: TrialTable, slots: Sequence[Device], target: float) -> float | None:
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


DEFAULT_TARGETS: tuple[str, ...] = ("q0.02", "q0.005", "best")
"""The default quality targets: the 2% and 0.5% loss quantiles of the table and its best loss."""


def target_label(spec: str) -> str:
    """The report label of a target spec: ``q0.02`` -> ``q2``, ``q0.005`` -> ``q0.5``, ``best``."""
    if spec == "best":
        return spec
    return f"q{float(spec[1:]) * 100:g}"


def target_losses(table: TrialTable, specs: Sequence[str]) -> dict[str, float]:
    """Label -> loss for target specs: ``qF`` (the loss a fraction F of rows reach) or ``best``.

    :raises ConfigError: a spec that is neither, or F outside (0, 1); the
        message shows the accepted forms.
    """
    from hwaware_plugins.errors import ConfigError

    out: dict[str, float] = {}
    for raw in specs:
        spec = raw.strip()
        if spec == "best":
            out["best"] = float(table.all_losses.min())
            continue
        try:
            fraction = float(spec[1:]) if spec.startswith("q") else math.nan
        except ValueError:
            fraction = math.nan
        if not 0 < fraction < 1:
            raise ConfigError(
                f"target {raw!r} not understood; use qF with 0 < F < 1 (a loss quantile of "
                "the table, e.g. q0.02) or best (the table's best loss)"
            )
        out[target_label(spec)] = table.loss_quantile(fraction)
    if not out:
        raise ConfigError("name at least one target, e.g. --targets q0.02,q0.005,best")
    return out


def regret_area(run: RunResult, optimum: float, start: float) -> float:
    """Area under ``best loss so far - optimum`` over ``[0, budget]`` (loss x seconds).

    Before the first completed trial the best loss so far counts as ``start``
    (e.g. the table's worst loss). Cost: O(n).
    """
    if not len(run):
        return (start - optimum) * run.budget_s
    running = np.minimum(np.minimum.accumulate(run.loss), start) - optimum
    edges = np.concatenate([run.end, [run.budget_s]])
    widths = np.diff(edges)
    return float((start - optimum) * run.end[0] + (running * widths).sum())
