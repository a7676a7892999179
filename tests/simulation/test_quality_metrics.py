"""Quality targets, regret, the acceptance rule, and the oracle in the simulator."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hwaware_plugins import load
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.simulation import (
    RunResult,
    auto_budget_hours,
    build_slots,
    load_devices,
    load_table,
    regret_area,
    run_benchmark,
    simulate,
    target_losses,
    time_to_target,
    verdicts,
)
from hwaware_plugins.simulation._verdict import limit_violations
from tests.simulation.conftest import write_table


def _run(ends: list[float], losses: list[float], budget: float = 10.0) -> RunResult:
    n = len(ends)
    return RunResult(
        scheduler="x",
        seed=0,
        budget_s=budget,
        n_slots=1,
        start=np.zeros(n),
        end=np.array(ends),
        loss=np.array(losses),
        subspace=("a",) * n,
        device_class=("cpu",) * n,
    )


def test_targets_are_quantiles_and_the_best_loss(table_path: Path) -> None:
    table = load_table(table_path)
    goals = target_losses(table, ["q0.02", "q0.005", "best"])
    assert list(goals) == ["q2", "q0.5", "best"]
    assert goals["q2"] == table.loss_quantile(0.02)
    assert goals["best"] == float(table.all_losses.min()) <= goals["q0.5"] <= goals["q2"]
    for bad in ("q2", "q0", "best2", "0.02"):
        with pytest.raises(ConfigError, match="use qF with 0 < F < 1"):
            target_losses(table, [bad])


def test_regret_area_worked_example() -> None:
    # start 1.0, optimum 0.0; results: 0.5 at t=2, 0.2 at t=6; budget 10
    # area = 1.0 x 2 + 0.5 x 4 + 0.2 x 4 = 4.8
    assert regret_area(_run([2.0, 6.0], [0.5, 0.2]), 0.0, 1.0) == pytest.approx(4.8)
    # a result worse than the start does not raise the curve
    assert regret_area(_run([2.0], [3.0]), 0.0, 1.0) == pytest.approx(10.0)
    assert regret_area(_run([], []), 0.0, 1.0) == pytest.approx(10.0)


def test_oracle_is_the_limit_on_a_table_where_hardware_matters(
    table_path: Path, devices_path: Path
) -> None:
    # the best rows are all mlp, which only the GPU runs fast: the oracle goes straight there
    table, slots = load_table(table_path), build_slots(load_devices(devices_path))
    best = float(table.all_losses.min())
    times = {}
    for name in ("random", "oracle"):
        hits = []
        for seed in range(3):
            run = simulate(table, slots, load("scheduler", name, seed=seed), budget_s=60, seed=seed)
            t = time_to_target(run, best)
            hits.append(60.0 if t is None else t)
        times[name] = float(np.median(hits))
    assert times["oracle"] * 2 < times["random"]


def test_report_ratios_limits_and_verdicts(tmp_path: Path, devices_path: Path) -> None:
    table = load_table(write_table(tmp_path / "t.csv", rows_per_subspace=60, seed=3))
    report = run_benchmark(
        table,
        load_devices(devices_path),
        workers=None,
        seeds=2,
        budget_hours=None,
        schedulers=["random", "oracle", "hwaware"],
    )
    assert report["settings"]["budget_hours"] == pytest.approx(auto_budget_hours(table))
    ours, base = report["schedulers"]["hwaware"], report["schedulers"]["random"]
    ratio = report["ratios"]["hwaware_vs_random"]
    for label in ("q2", "q0.5", "best"):
        assert ratio["targets"][label] == pytest.approx(
            base["targets_hours"][label] / ours["targets_hours"][label]
        )
        reached = ours["targets_reached"][label]
        assert (ours["targets"][label] is None) == (reached <= 0.5)
    assert base["regret_auc"] == pytest.approx(1.0)
    limit = report["limit"]["oracle_vs_random"]["time_to_target_gmean"]
    verdict = verdicts(report)["random"]
    assert verdict["oracle"] == limit
    assert verdict["bound"] == (1.5 if limit >= 2.25 else pytest.approx(math.sqrt(limit)))
    assert verdict["ok"] == (
        verdict["hwaware"] >= verdict["bound"]
        and verdict["worst_target"] >= 1.0
        and verdict["regret"] > 1.0
    )


def test_jobs_give_the_same_report(table_path: Path, devices_path: Path) -> None:
    table, devices = load_table(table_path), load_devices(devices_path)
    kwargs = {
        "workers": None,
        "seeds": 2,
        "budget_hours": 0.005,
        "schedulers": ["random", "hwaware"],
    }
    one = run_benchmark(table, devices, jobs=1, **kwargs)  # type: ignore[arg-type]
    two = run_benchmark(table, devices, jobs=2, **kwargs)  # type: ignore[arg-type]
    assert one["schedulers"] == two["schedulers"]


def test_the_oracle_is_its_best_policy_per_target_and_the_limit(
    tmp_path: Path, devices_path: Path
) -> None:
    table = load_table(write_table(tmp_path / "t.csv", rows_per_subspace=60, seed=3))
    report = run_benchmark(
        table,
        load_devices(devices_path),
        workers=None,
        seeds=3,
        budget_hours=None,
        schedulers=["random", "oracle"],
    )
    policies = report["oracle_policies"]
    names = {"oracle:q2", "oracle:q0.5", "oracle:best", "oracle:ei", "oracle:regret"}
    assert set(policies) == names
    oracle = report["schedulers"]["oracle"]
    for label in ("q2", "q0.5", "best"):
        soonest = min(p["targets_hours"][label] for p in policies.values())
        assert oracle["targets_hours"][label] == soonest
        assert oracle["policy"][label] in policies
    assert oracle["regret_auc"] == min(p["regret_auc"] for p in policies.values())
    assert limit_violations(report) == []
    sooner = {"targets_hours": {k: v / 2 for k, v in oracle["targets_hours"].items()}}
    random = {**report["schedulers"]["random"], **sooner}
    faked = {"schedulers": {"oracle": oracle, "random": random}}
    assert any("random reached" in line for line in limit_violations(faked))


def test_a_packaged_table_is_named_the_same_on_every_machine(tmp_path: Path) -> None:
    from hwaware_plugins.simulation._benchmark import shown_source
    from hwaware_plugins.simulation._suite import SUITE_TABLES

    packaged = SUITE_TABLES["digits"]
    assert shown_source(str(packaged)) == "hwaware_plugins/data/digits_cash.csv"
    own = tmp_path / "mine.csv"
    assert shown_source(str(own)) == str(own)
