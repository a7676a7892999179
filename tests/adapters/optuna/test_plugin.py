"""The optuna adapter registers its sampler and pruners by name."""

from __future__ import annotations

import optuna
from hwaware_optuna import CostAwarePruner, HardwareAwareSampler, SubspacePruner

import hwaware_plugins


def test_components_are_listed_for_optuna() -> None:
    names = {(c.kind, c.name) for c in hwaware_plugins.components(framework="optuna")}
    assert {("sampler", "hwaware"), ("pruner", "subspace"), ("pruner", "cost")} <= names
    providers = {
        c.provider for c in hwaware_plugins.components(framework="optuna") if c.kind == "pruner"
    }
    assert providers == {"hwaware-optuna"}


def test_components_build_by_name() -> None:
    sampler = hwaware_plugins.load("sampler", "hwaware", framework="optuna", seed=3)
    assert isinstance(sampler, HardwareAwareSampler) and sampler.seed == 3
    pruner = hwaware_plugins.load(
        "pruner", "subspace", framework="optuna", base_pruner=optuna.pruners.MedianPruner()
    )
    assert isinstance(pruner, SubspacePruner)
    cost = hwaware_plugins.load("pruner", "cost", framework="optuna", k_median=2.0)
    assert isinstance(cost, CostAwarePruner) and cost.k_median == 2.0
