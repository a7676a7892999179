"""Compare schedulers on the same seeds: medians, ratios to hwaware, best-loss curves."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.simulation._cluster import build_slots
from hwaware_plugins.simulation._engine import RunResult, simulate
from hwaware_plugins.simulation._metrics import (
    best_loss_curve,
    models_per_hour,
    time_to_target,
    time_to_target_floor,
)
from hwaware_plugins.simulation._table import TrialTable

DEFAULT_SCHEDULERS: tuple[str, ...] = ("fcfs", "shadho", "hwaware")
DEFAULT_TARGET_QUANTILE = 0.005
"""Default target: the loss that 0.5% of the table's rows reach."""


def summarize(runs: Sequence[RunResult], target: float) -> dict[str, float]:
    """Medians over seeds; a run that never reaches the target counts as the budget."""
    hours = []
    reached = 0
    for run in runs:
        t = time_to_target(run, target)
        reached += t is not None
        hours.append((run.budget_s if t is None else t) / 3600.0)
    best = [float(run.loss.min()) if len(run) else math.nan for run in runs]
    return {
        "models_per_hour": statistics.median(models_per_hour(r) for r in runs),
        "hours_to_target": statistics.median(hours),
        "best_loss": statistics.median(best),
        "reached_target_fraction": reached / len(runs),
        "median_trials": statistics.median(len(r) for r in runs),
    }


def ratios(ours: dict[str, float], baseline: dict[str, float]) -> dict[str, float | None]:
    """hwaware vs a baseline; every ratio > 1 means hwaware did better.

    models_per_hour: ours / baseline; time_to_target: baseline hours / ours;
    best_loss: baseline loss / ours (``None`` when ours is 0 and theirs is not;
    1.0 when both are 0).
    """
    ours_loss, base_loss = ours["best_loss"], baseline["best_loss"]
    if ours_loss == 0:
        loss_ratio: float | None = 1.0 if base_loss == 0 else None
    else:
        loss_ratio = base_loss / ours_loss
    return {
        "models_per_hour": ours["models_per_hour"] / baseline["models_per_hour"],
        "time_to_target": baseline["hours_to_target"] / ours["hours_to_target"],
        "best_loss": loss_ratio,
    }


def run_benchmark(
    table: TrialTable,
    devices: Sequence[Device],
    *,
    workers: int | None,
    seeds: int,
    budget_hours: float,
    target_loss: float | None = None,
    schedulers: Sequence[str] = DEFAULT_SCHEDULERS,
    curve_points: int = 60,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Simulate every scheduler on seeds ``0..seeds-1``; return the report dict.

    Keys: ``schedulers`` (per-name medians, :func:`summarize`), ``ratios``
    (``hwaware_vs_<name>`` for each other scheduler, :func:`ratios`),
    ``bounds`` (``hours_to_target_floor``, the soonest any scheduler could
    reach the target, :func:`time_to_target_floor`, and per scheduler
    ``time_to_target_ceiling``, its median hours over that floor: the largest
    time-to-target ratio any scheduler could reach against it), ``settings``
    and ``curves`` (median best loss at ``curve_points`` times).
    Cost: seeds x schedulers simulations.
    """
    from hwaware_plugins._manager import load

    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    if not budget_hours > 0 or not math.isfinite(budget_hours):
        raise ConfigError(f"--budget-hours must be a positive number, got {budget_hours}")
    if not schedulers:
        raise ConfigError("name at least one scheduler")
    slots = build_slots(devices, workers)
    infos = table.subspace_infos()
    target = table.loss_quantile(DEFAULT_TARGET_QUANTILE) if target_loss is None else target_loss
    budget_s = budget_hours * 3600.0
    times = np.linspace(0.0, budget_s, curve_points + 1)[1:]
    summaries: dict[str, dict[str, float]] = {}
    curves: dict[str, list[float | None]] = {"hours": (times / 3600.0).tolist()}
    for name in schedulers:
        runs = []
        for seed in range(seeds):
            scheduler = load("scheduler", name, seed=seed)
            runs.append(
                simulate(table, slots, scheduler, budget_s=budget_s, seed=seed, infos=infos)
            )
            if progress is not None:
                progress(name, seed)
        summaries[name] = summarize(runs, target)
        stacked = np.vstack([best_loss_curve(r, times.tolist()) for r in runs])
        curves[name] = [_nan_median(col) for col in stacked.T]
    report: dict[str, Any] = {"schedulers": summaries}
    if "hwaware" in summaries:
        report["ratios"] = {
            f"hwaware_vs_{name}": ratios(summaries["hwaware"], s)
            for name, s in summaries.items()
            if name != "hwaware"
        }
    floor = time_to_target_floor(table, slots, target)
    report["bounds"] = {
        "hours_to_target_floor": None if floor is None else floor / 3600.0,
        "time_to_target_ceiling": {
            name: None if floor is None else s["hours_to_target"] * 3600.0 / floor
            for name, s in summaries.items()
        },
    }
    report["settings"] = {
        "table": table.source,
        "workers": len(slots),
        "seeds": seeds,
        "budget_hours": budget_hours,
        "target_loss": target,
        "target_rule": "given" if target_loss is not None else "0.5% quantile of table losses",
    }
    report["curves"] = curves
    return report


def _nan_median(values: np.ndarray) -> float | None:
    kept = values[~np.isnan(values)]
    return float(np.median(kept)) if kept.size * 2 > values.size else None
