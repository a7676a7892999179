"""Compare schedulers on the same seeds: time to quality targets, regret, ratios, curves."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.scheduling._base import SubspaceInfo
from hwaware_plugins.simulation._cluster import build_slots
from hwaware_plugins.simulation._engine import RunResult, simulate
from hwaware_plugins.simulation._metrics import (
    DEFAULT_TARGETS,
    best_loss_curve,
    models_per_hour,
    regret_area,
    target_losses,
    time_to_target,
    time_to_target_floor,
)
from hwaware_plugins.simulation._suite import DATA_DIR
from hwaware_plugins.simulation._table import TrialTable

DEFAULT_SCHEDULERS: tuple[str, ...] = ("random", "tpe", "shadho", "oracle", "hwaware")
BASELINES: tuple[str, ...] = ("random", "fcfs", "tpe", "shadho")
"""Schedulers hwaware is judged against (``oracle`` is the limit, not a competitor)."""
DEFAULT_TARGET_QUANTILE = 0.005
"""Legacy single target (``hours_to_target``): the loss that 0.5% of the table's rows reach."""
AUTO_BUDGET_WAVES = 12.0
"""Default budget: this many times the table's mean runtime on a speed-1 slot."""


def auto_budget_hours(table: TrialTable) -> float:
    """The default virtual budget: :data:`AUTO_BUDGET_WAVES` x the table's mean row runtime.

    About a dozen waves of an average trial on a reference slot: every
    scheduler runs many trials per slot, however cheap or dear the table.
    """
    runtimes = np.concatenate([s.runtimes for s in table.subspaces])
    return AUTO_BUDGET_WAVES * float(runtimes.mean()) / 3600.0


def _hours(run: RunResult, target: float) -> tuple[float, bool]:
    t = time_to_target(run, target)
    return (run.budget_s if t is None else t) / 3600.0, t is not None


def summarize(
    runs: Sequence[RunResult],
    target: float,
    targets: Mapping[str, float] | None = None,
    regrets: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Medians over seeds; a run that never reaches a target counts as the budget.

    ``targets``: per label, ``None`` when the median run did not reach it
    (the median would only be the budget; the flag is ``targets_reached``, the
    fraction of runs that did); ``targets_hours``: the same medians with
    unreached runs counted as the budget (what ratios use).
    ``regret_auc``: median of ``regrets`` (already normalised).
    """
    hours = [_hours(run, target) for run in runs]
    best = statistics.median(float(run.loss.min()) if len(run) else math.inf for run in runs)
    out: dict[str, Any] = {
        "models_per_hour": statistics.median(models_per_hour(r) for r in runs),
        "hours_to_target": statistics.median(h for h, _ in hours),
        "best_loss": best if math.isfinite(best) else None,  # None: the median run ended none
        "reached_target_fraction": sum(ok for _, ok in hours) / len(runs),
        "median_trials": statistics.median(len(r) for r in runs),
    }
    if targets:
        per = {label: [_hours(run, loss) for run in runs] for label, loss in targets.items()}
        medians = {label: statistics.median(h for h, _ in v) for label, v in per.items()}
        reached = {label: sum(ok for _, ok in v) / len(runs) for label, v in per.items()}
        out["targets"] = {
            label: medians[label] if reached[label] > 0.5 else None for label in targets
        }
        out["targets_hours"] = medians
        out["targets_reached"] = reached
    if regrets is not None:
        out["regret_auc"] = statistics.median(regrets)
    return out


def _gmean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def ratios(ours: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """One scheduler vs another; every ratio > 1 means the first did better.

    models_per_hour: ours / baseline; time_to_target: baseline hours / ours;
    best_loss: baseline loss / ours (``None`` when ours is 0 and theirs is not;
    1.0 when both are 0). With targets: ``targets`` per label (baseline hours
    / ours, unreached counted as the budget; labels where either median run
    missed the target are listed in ``censored``), ``time_to_target_gmean``
    (their geometric mean) and ``regret_auc`` (baseline regret / ours).
    """
    ours_loss, base_loss = ours["best_loss"], baseline["best_loss"]
    loss_ratio: float | None
    if ours_loss is None or base_loss is None:
        loss_ratio = None
    elif ours_loss == 0:
        loss_ratio = 1.0 if base_loss == 0 else None
    else:
        loss_ratio = base_loss / ours_loss
    base_rate = baseline["models_per_hour"]
    out: dict[str, Any] = {
        "models_per_hour": ours["models_per_hour"] / base_rate if base_rate > 0 else None,
        "time_to_target": baseline["hours_to_target"] / ours["hours_to_target"],
        "best_loss": loss_ratio,
    }
    if "targets_hours" in ours and "targets_hours" in baseline:
        per = {
            label: baseline["targets_hours"][label] / hours
            for label, hours in ours["targets_hours"].items()
        }
        out["targets"] = per
        out["time_to_target_gmean"] = _gmean(list(per.values()))
        out["censored"] = [
            label
            for label in per
            if ours["targets"][label] is None or baseline["targets"][label] is None
        ]
    if "regret_auc" in ours and "regret_auc" in baseline:
        out["regret_auc"] = (
            baseline["regret_auc"] / ours["regret_auc"] if ours["regret_auc"] > 0 else None
        )
    return out


_Task = tuple[
    TrialTable, Sequence[Device], Sequence[SubspaceInfo], str, int, float, dict[str, Any]
]
ORACLE_EI = "oracle:ei"
"""The oracle policy with no target: greedy expected improvement per second."""


def oracle_policies(
    goals: Mapping[str, float], horizon_s: float | None = None
) -> dict[str, dict[str, Any]]:
    """The oracle runs behind the ``oracle`` figures: run label -> scheduler options.

    One policy per target, ``oracle:<label>``: the plan for that target until
    it is reached, then the plans of the harder targets (lower losses), then
    expected improvement per second; :data:`ORACLE_EI` alone; and, with
    ``horizon_s`` (the budget), ``oracle:regret``: the static allocation of
    slots to subspaces with the least expected regret area over the horizon
    (:func:`~hwaware_plugins.scheduling._oracle_plan.regret_allocation`).
    Until its target is reached
    a policy is the target's own plan, so its time to that target is the
    plan's. Cost: O(targets).
    """
    easy_first = sorted(goals.items(), key=lambda kv: -kv[1])
    out: dict[str, dict[str, Any]] = {}
    for k, (label, _) in enumerate(easy_first):
        out[f"oracle:{label}"] = {"targets": [loss for _, loss in easy_first[k:]]}
    out[ORACLE_EI] = {"targets": []}
    if horizon_s is not None:
        out["oracle:regret"] = {"regret_horizon_s": horizon_s}
    return out


def oracle_limit(policies: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``oracle`` summary: per target and for the regret, the best of the oracle policies.

    ``targets_hours[label]`` is the smallest median over the policies (in
    practice the policy for that target); ``regret_auc`` the smallest median
    regret; ``policy`` names, per figure, the policy that gave it. Other
    figures (models per hour, ...) are the regret policy's. Cost: O(policies x targets).
    """
    regret_of = min(policies, key=lambda p: policies[p].get("regret_auc", math.inf))
    out = dict(policies[regret_of])
    chosen: dict[str, str] = {"regret_auc": regret_of}
    if "targets_hours" in out:
        hours, flags, reached = {}, {}, {}
        for label in out["targets_hours"]:
            name = min(policies, key=lambda p: policies[p]["targets_hours"][label])
            chosen[label] = name
            hours[label] = policies[name]["targets_hours"][label]
            flags[label] = policies[name]["targets"][label]
            reached[label] = policies[name]["targets_reached"][label]
        out.update(targets_hours=hours, targets=flags, targets_reached=reached)
    out["hours_to_target"] = min(p["hours_to_target"] for p in policies.values())
    out["policy"] = chosen
    return out


_DEAREST_FIRST: tuple[str, ...] = ("shadho", "tpe", "hwaware")
"""Schedulers whose runs cost most, dearest first (profiled on the suite: shadho's GP fits,
then TPE's estimators, then hwaware's model; random and oracle are 10-50x cheaper)."""


def _cost_rank(name: str) -> int:
    """Queue position of a scheduler's runs: the dear ones first, then the rest in given order."""
    return _DEAREST_FIRST.index(name) if name in _DEAREST_FIRST else len(_DEAREST_FIRST)


def _one_run(task: _Task) -> RunResult:
    from hwaware_plugins._manager import load

    table, slots, infos, name, seed, budget_s, options = task
    scheduler = load("scheduler", name, seed=seed, **options)
    return simulate(table, slots, scheduler, budget_s=budget_s, seed=seed, infos=infos)


def _all_runs(
    table: TrialTable,
    slots: Sequence[Device],
    schedulers: Mapping[str, tuple[str, dict[str, Any]]],
    seeds: int,
    budget_s: float,
    jobs: int,
    progress: Callable[[str, int], None] | None,
) -> dict[str, list[RunResult]]:
    """Every run, keyed by label; ``schedulers``: label -> (registered name, options)."""
    infos = table.subspace_infos()
    # Dearest schedulers first, so no process idles at the end of the queue.
    queue = sorted(schedulers.items(), key=lambda item: _cost_rank(item[1][0]))
    tasks: list[tuple[str, _Task]] = [
        (label, (table, slots, infos, name, seed, budget_s, options))
        for label, (name, options) in queue
        for seed in range(seeds)
    ]
    runs: dict[str, list[RunResult]] = {label: [] for label in schedulers}
    if jobs <= 1:
        results: Any = map(_one_run, [t for _, t in tasks])
        pool = None
    else:
        import concurrent.futures
        import multiprocessing
        import os

        context = multiprocessing.get_context("fork" if hasattr(os, "fork") else None)
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context)
        results = pool.map(_one_run, [t for _, t in tasks], chunksize=1)
    try:
        for (label, task), run in zip(tasks, results, strict=True):
            runs[label].append(run)
            if progress is not None:
                progress(label, task[4])
    finally:
        if pool is not None:
            pool.shutdown()
    return runs


def run_benchmark(
    table: TrialTable,
    devices: Sequence[Device],
    *,
    workers: int | None,
    seeds: int,
    budget_hours: float | None,
    target_loss: float | None = None,
    targets: Sequence[str] = DEFAULT_TARGETS,
    schedulers: Sequence[str] = DEFAULT_SCHEDULERS,
    curve_points: int = 60,
    jobs: int = 1,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Simulate every scheduler on seeds ``0..seeds-1``; return the report dict.

    Keys: ``schedulers`` (per-name medians, :func:`summarize`: time to each
    target, regret AUC normalised so that ``random``'s median is 1.0 (the best
    loss so far counts as the table's median loss before the first result), models
    per hour, ...), ``ratios`` (``hwaware_vs_<name>`` for each other
    scheduler, :func:`ratios`), ``limit`` (``oracle_vs_<name>``: what the
    oracle reaches against each baseline), ``bounds`` (the soonest any
    scheduler could reach the legacy target, :func:`time_to_target_floor`),
    ``settings`` and ``curves`` (median best loss at ``curve_points`` times).
    ``budget_hours=None``: :func:`auto_budget_hours`. ``jobs > 1`` runs the
    simulations in that many processes. Cost: seeds x schedulers simulations.
    """
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    if budget_hours is None:
        budget_hours = auto_budget_hours(table)
    if not budget_hours > 0 or not math.isfinite(budget_hours):
        raise ConfigError(f"--budget-hours must be a positive number, got {budget_hours}")
    if not schedulers:
        raise ConfigError("name at least one scheduler")
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    goals = target_losses(table, targets)
    slots = build_slots(devices, workers)
    target = table.loss_quantile(DEFAULT_TARGET_QUANTILE) if target_loss is None else target_loss
    budget_s = budget_hours * 3600.0
    plan: dict[str, tuple[str, dict[str, Any]]] = {}
    for name in schedulers:
        if name == "oracle":
            policies = oracle_policies(goals, budget_s)
            plan.update((k, ("oracle", v)) for k, v in policies.items())
        else:
            plan[name] = (name, {})
    runs = _all_runs(table, slots, plan, seeds, budget_s, jobs, progress)
    optimum = float(table.all_losses.min())
    start = float(np.median(table.all_losses))  # what a typical first trial gives
    areas = {name: [regret_area(r, optimum, start) for r in rs] for name, rs in runs.items()}
    reference_name = next((n for n in ("random", "fcfs") if n in runs), None)
    if reference_name is not None:
        reference = statistics.median(areas[reference_name])
        rule = f"median regret area of {reference_name}"
    else:
        reference = (start - optimum) * budget_s
        rule = "(median loss - best loss) x budget"
    reference = reference if reference > 0 else 1.0
    times = np.linspace(0.0, budget_s, curve_points + 1)[1:]
    summaries: dict[str, dict[str, Any]] = {}
    curves: dict[str, list[float | None]] = {"hours": (times / 3600.0).tolist()}
    for name, rs in runs.items():
        summaries[name] = summarize(rs, target, goals, [a / reference for a in areas[name]])
        stacked = np.vstack([best_loss_curve(r, times.tolist()) for r in rs])
        curves[name] = [_nan_median(col) for col in stacked.T]
    policies = {n: summaries.pop(n) for n in list(summaries) if n.startswith("oracle:")}
    if policies:
        summaries["oracle"] = oracle_limit(policies)
        curves["oracle"] = curves[summaries["oracle"]["policy"]["regret_auc"]]
        for n in policies:
            curves.pop(n)
        summaries = {n: summaries[n] for n in schedulers}
    report: dict[str, Any] = {"schedulers": summaries}
    if policies:
        report["oracle_policies"] = policies
    if "hwaware" in summaries:
        report["ratios"] = {
            f"hwaware_vs_{name}": ratios(summaries["hwaware"], s)
            for name, s in summaries.items()
            if name != "hwaware"
        }
    if "oracle" in summaries:
        report["limit"] = {
            f"oracle_vs_{name}": ratios(summaries["oracle"], s)
            for name, s in summaries.items()
            if name not in ("oracle", "hwaware")
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
        "table": shown_source(table.source),
        "workers": len(slots),
        "seeds": seeds,
        "budget_hours": budget_hours,
        "target_loss": target,
        "target_rule": "given" if target_loss is not None else "0.5% quantile of table losses",
        "targets": goals,
        "regret_reference": rule,
    }
    report["curves"] = curves
    return report


def shown_source(source: str) -> str:
    """``source`` as a report shows it: a packaged table as ``hwaware_plugins/data/NAME``
    (the same on every machine), any other path as given. Pure but for resolving the path."""
    try:
        relative = Path(source).resolve().relative_to(DATA_DIR)
    except (OSError, ValueError):
        return source
    return f"hwaware_plugins/data/{relative.as_posix()}"


def _nan_median(values: np.ndarray) -> float | None:
    kept = values[~np.isnan(values)]
    return float(np.median(kept)) if kept.size * 2 > values.size else None
