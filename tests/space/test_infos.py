"""Bridging enumerated subspaces to the scheduler's SubspaceInfo."""

from __future__ import annotations

import math

import pytest

from hwaware_plugins.scheduling._base import SubspaceInfo
from hwaware_plugins.space import (
    Float,
    Int,
    ShadhoComplexity,
    Subspace,
    enumerate_subspaces,
    from_dict,
    subspace_infos,
)

SPACE = from_dict(
    {
        "model": {
            "svm": {"C": Float(1e-3, 1e3, log=True), "gamma": Float(1e-4, 1, log=True)},
            "knn": {"k": Int(1, 5)},
        }
    }
)


def test_infos_carry_keys_and_hwaware_complexity() -> None:
    infos = subspace_infos(enumerate_subspaces(SPACE))
    assert infos == [
        SubspaceInfo("model=svm", pytest.approx(math.log(60 * 40))),  # type: ignore[arg-type]
        SubspaceInfo("model=knn", pytest.approx(math.log(5))),  # type: ignore[arg-type]
    ]


def test_infos_under_shadho_rule_and_rule_objects() -> None:
    subspaces = enumerate_subspaces(SPACE)
    by_name = subspace_infos(subspaces, rule="shadho")
    by_object = subspace_infos(subspaces, rule=ShadhoComplexity(combine="sum"))
    # product 7.94 * 5.96 = 47.3224; sum 7.94 + 5.96 = 13.9; knn 2 - 1/5 = 1.8
    assert [i.complexity for i in by_name] == pytest.approx([47.3224, 1.8])
    assert [i.complexity for i in by_object] == pytest.approx([13.9, 1.8])


def test_family_of_as_function_or_mapping() -> None:
    subspaces = enumerate_subspaces(SPACE)

    def family(subspace: Subspace) -> str:
        return "kernel" if subspace.branches["model"] == "svm" else "neighbours"

    assert [i.family for i in subspace_infos(subspaces, family_of=family)] == [
        "kernel",
        "neighbours",
    ]
    as_mapping = subspace_infos(subspaces, family_of={"model=svm": "kernel"})
    assert [i.family for i in as_mapping] == ["kernel", None]
