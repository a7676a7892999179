"""Subspace counting and enumeration (SHADHO's splitting rule), the cap and its fallback."""

from __future__ import annotations

import itertools
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwaware_plugins import ConfigError, SearchSpaceError
from hwaware_plugins.space import (
    Categorical,
    Choice,
    Float,
    Group,
    Int,
    Node,
    Optional,
    Param,
    count_subspaces,
    enumerate_subspaces,
    from_dict,
)

C = Float(1e-3, 1e3, log=True)
GAMMA = Float(1e-4, 1, log=True)
COEF0 = Float(-1, 1)


def cash_space() -> Group:
    """SVM (4 kernels) + random forest + kNN: 6 subspaces."""
    return from_dict(
        {
            "model": {
                "svm": {
                    "C": C,
                    "kernel": {
                        "linear": None,
                        "rbf": {"gamma": GAMMA},
                        "poly": {"gamma": GAMMA, "degree": Int(2, 5), "coef0": COEF0},
                        "sigmoid": {"gamma": GAMMA, "coef0": COEF0},
                    },
                },
                "rf": {"n_estimators": Int(10, 500, log=True), "criterion": ["gini", "entropy"]},
                "knn": {"k": Int(1, 50)},
            }
        }
    )


def test_cash_space_enumeration() -> None:
    space = cash_space()
    subspaces = enumerate_subspaces(space)
    assert count_subspaces(space) == 6
    assert [s.key for s in subspaces] == [
        "model=svm/kernel=linear",
        "model=svm/kernel=rbf",
        "model=svm/kernel=poly",
        "model=svm/kernel=sigmoid",
        "model=rf",
        "model=knn",
    ]
    by_key = {s.key: s for s in subspaces}
    assert by_key["model=svm/kernel=rbf"].branches == {"model": "svm", "kernel": "rbf"}
    assert by_key["model=svm/kernel=rbf"].params == {"C": C, "gamma": GAMMA}
    assert by_key["model=svm/kernel=linear"].params == {"C": C}
    assert set(by_key["model=svm/kernel=poly"].params) == {"C", "gamma", "degree", "coef0"}
    assert by_key["model=rf"].params["criterion"] == Categorical(("gini", "entropy"))
    assert by_key["model=knn"].branches == {"model": "knn"}


def test_groups_multiply_and_optionals_add_the_empty_alternative() -> None:
    space = Group(
        (
            Choice("opt", {"sgd": Param("momentum", Float(0, 1)), "adam": None}),
            Optional("dropout", Param("p", Float(0, 0.5))),
            Param("lr", Float(1e-4, 1e-1, log=True)),
        )
    )
    assert count_subspaces(space) == 2 * 2
    subspaces = enumerate_subspaces(space)
    assert [s.key for s in subspaces] == [
        "opt=sgd/dropout=on",
        "opt=sgd/dropout=off",
        "opt=adam/dropout=on",
        "opt=adam/dropout=off",
    ]
    assert list(subspaces[1].params) == ["momentum", "lr"]
    assert list(subspaces[2].params) == ["p", "lr"]


def test_a_space_without_branches_is_one_subspace() -> None:
    [only] = enumerate_subspaces(from_dict({"x": Float(0, 1), "n": Int(1, 3)}))
    assert only.key == "all"
    assert only.branches == {}
    assert list(only.params) == ["x", "n"]


def test_over_the_cap_falls_back_to_top_level_branches(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hwaware_plugins.space"):
        subspaces = enumerate_subspaces(cash_space(), max_subspaces=5)
    assert "6 subspaces, more than max_subspaces=5" in caplog.text
    assert [s.key for s in subspaces] == ["model=svm", "model=rf", "model=knn"]
    svm = subspaces[0]
    assert svm.params["kernel"] == Categorical(("linear", "rbf", "poly", "sigmoid"))
    assert set(svm.params) == {"C", "kernel", "gamma", "degree", "coef0"}


def test_over_the_cap_twice_gives_one_subspace(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hwaware_plugins.space"):
        [only] = enumerate_subspaces(cash_space(), max_subspaces=2)
    assert "single subspace" in caplog.text
    assert only.key == "all"
    assert only.params["model"] == Categorical(("svm", "rf", "knn"))


def test_counting_an_exploding_space_does_not_enumerate() -> None:
    layers = tuple(
        Choice(f"layer{i}", {f"w{j}": Param(f"u{i}_{j}", Int(1, 9)) for j in range(10)})
        for i in range(30)
    )
    space = Group(layers)
    assert count_subspaces(space) == 10**30
    assert [s.key for s in enumerate_subspaces(space)] == ["all"]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_max_subspaces_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ConfigError, match="max_subspaces"):
        enumerate_subspaces(cash_space(), max_subspaces=bad)  # type: ignore[arg-type]


def test_ambiguous_keys_are_refused() -> None:
    space = Group((Choice("a", {"b/c=d": None, "b": Choice("c", {"d": None})}),))
    with pytest.raises(SearchSpaceError, match="share the key 'a=b/c=d'"):
        enumerate_subspaces(space)


def test_validation_runs_before_enumeration() -> None:
    with pytest.raises(SearchSpaceError, match="'gamma': low=1 is greater"):
        enumerate_subspaces(from_dict({"k": {"rbf": {"gamma": Float(1, 0)}}}))


# -------------------------------------------------------------- properties

_names = itertools.count()


def _rename(node: Node) -> Node:
    """Give every parameter and branch a unique name, so any generated tree is valid."""
    if isinstance(node, Param):
        return Param(f"p{next(_names)}", node.distribution)
    if isinstance(node, Group):
        return Group(tuple(_rename(c) for c in node.children))
    if isinstance(node, Choice):
        return Choice(
            f"c{next(_names)}",
            {label: None if o is None else _rename(o) for label, o in node.options.items()},
        )
    return Optional(f"o{next(_names)}", _rename(node.node))


leaves = st.builds(Param, st.just("x"), st.builds(Int, st.just(0), st.integers(0, 5)))
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda cs: Group(tuple(cs))),
        st.lists(st.one_of(st.none(), inner), min_size=1, max_size=3).map(
            lambda os: Choice("c", {f"l{i}": o for i, o in enumerate(os)})
        ),
        inner.map(lambda n: Optional("o", n)),
    ),
    max_leaves=12,
).map(_rename)


@settings(max_examples=150, deadline=None)
@given(trees, st.integers(1, 64))
def test_count_matches_enumeration_under_the_cap(tree: Node, cap: int) -> None:
    count = count_subspaces(tree)
    subspaces = enumerate_subspaces(tree, max_subspaces=cap)
    if count <= cap:
        assert len(subspaces) == count
        assert len({s.key for s in subspaces}) == count
    else:
        assert len(subspaces) <= cap
    # Uncapped, every leaf parameter of the tree is free in at least one subspace.
    full = enumerate_subspaces(tree, max_subspaces=count)
    assert len(full) == count
    assert set().union(*(s.params for s in full)) == _leaf_names(tree)


def _leaf_names(node: Node) -> set[str]:
    if isinstance(node, Param):
        return {node.name}
    if isinstance(node, Group):
        return set().union(*map(_leaf_names, node.children))
    if isinstance(node, Choice):
        return set().union(*(_leaf_names(o) for o in node.options.values() if o is not None))
    return _leaf_names(node.node)
