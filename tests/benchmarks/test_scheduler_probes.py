"""The two probes of the acceptance rule: the first-wave probe and the seed-set stability run
(benchmarks/scheduler_first_wave_probe.py, benchmarks/scheduler_verdict_stability.py)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import hwaware_plugins
from hwaware_plugins.scheduling import DeviceClassInfo, History, SubspaceInfo
from hwaware_plugins.scheduling._hwaware import HwawareScheduler
from hwaware_plugins.simulation import DEFAULT_TARGETS, load_devices, load_table, target_losses
from hwaware_plugins.simulation._benchmark import oracle_policies
from hwaware_plugins.simulation._cluster import build_slots
from hwaware_plugins.simulation._engine import RunResult, simulate
from hwaware_plugins.simulation._suite import SUITE_POOLS, SUITE_TABLES

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
BUDGET_S = 0.3


@pytest.fixture()
def benchmarks_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import their neighbours
    yield


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def restored_hwaware() -> Iterator[None]:
    """Whatever a probe patches on HwawareScheduler is put back after the test."""
    before = dict(vars(HwawareScheduler))
    yield
    for name in set(vars(HwawareScheduler)) - set(before):
        delattr(HwawareScheduler, name)
    for name in ("setup", "choose"):
        setattr(HwawareScheduler, name, before[name])


def _launches(scheduler: Any, seed: int) -> tuple[list[tuple[float, str]], RunResult]:
    """Run digits on hetero-150 and return every decision (clock, subspace) and the result."""
    table = load_table(SUITE_TABLES["digits"])
    slots = build_slots(load_devices(SUITE_POOLS["hetero-150"]), 150)
    decisions: list[tuple[float, str]] = []
    choose = scheduler.choose

    def recording(device_class: str, history: History) -> str:
        key = str(choose(device_class, history))
        decisions.append((history.latest_finished_at or 0.0, key))
        return key

    scheduler.choose = recording
    return decisions, simulate(table, slots, scheduler, budget_s=BUDGET_S, seed=seed)


def test_first_wave_is_the_oracles_and_the_rest_is_hwawares_without_speedups(
    benchmarks_on_path: None, restored_hwaware: None
) -> None:
    seen: list[Sequence[DeviceClassInfo]] = []
    setup = HwawareScheduler.setup

    def spying(
        self: HwawareScheduler,
        subspaces: Sequence[SubspaceInfo],
        classes: Sequence[DeviceClassInfo],
    ) -> None:
        seen.append(classes)
        setup(self, subspaces, classes)

    HwawareScheduler.setup = spying  # type: ignore[method-assign]
    probe = _load("scheduler_first_wave_probe")
    probe._patch("q2", 0)
    table = load_table(SUITE_TABLES["digits"])
    probe.set_goals(table)
    mixed, _ = _launches(HwawareScheduler(seed=3), seed=3)
    goals = target_losses(table, DEFAULT_TARGETS)
    oracle_alone, _ = _launches(
        hwaware_plugins.load("scheduler", "oracle", seed=3, **oracle_policies(goals)["oracle:q2"]),
        seed=3,
    )
    first_wave = [key for clock, key in mixed if clock == 0.0]
    assert len(first_wave) == 150
    assert first_wave == [key for clock, key in oracle_alone if clock == 0.0]
    assert len({key for clock, key in mixed if clock > 0.0}) > 1  # hwaware spreads, learns
    assert seen and all(not c.speedup for c in seen[-1])  # hwaware never sees the truth


def test_stability_runs_the_benchmarks_own_run_on_shifted_seeds(benchmarks_on_path: None) -> None:
    stability = _load("scheduler_verdict_stability")
    table = load_table(SUITE_TABLES["digits"])
    slots = build_slots(load_devices(SUITE_POOLS["two-class-150"]), 150)
    task = (table, slots, table.subspace_infos(), "random", 0, BUDGET_S, {})
    stability._OFFSET[0] = 4
    shifted = stability._offset_run(task)
    direct = stability._ORIGINAL_ONE_RUN((*task[:4], 4, *task[5:]))
    assert shifted.seed == 4
    assert np.array_equal(shifted.end, direct.end)
    assert shifted.subspace == direct.subspace
    stability._OFFSET[0] = 0
    assert not np.array_equal(stability._offset_run(task).end, shifted.end)
