"""Reading hyperopt spaces: branches, distributions, subspace of a trial, fixing branches."""

from __future__ import annotations

import math

import numpy as np
from hwaware_hyperopt import branching, read_space
from hyperopt import hp, pyll

from hwaware_plugins.space import Categorical, Choice, Float, Int, Normal

SPACE = hp.choice("model", [
    {"type": "svm", "C": hp.loguniform("C", -3, 3),
     "kernel": hp.choice("kernel", [{"k": "rbf", "gamma": hp.uniform("gamma", 0, 1)},
                                    {"k": "poly", "degree": hp.quniform("degree", 2, 5, 1)}])},
    {"type": "knn", "n": hp.randint("n", 1, 30), "act": hp.choice("act", ["a", "b"])},
    {"type": "lin", "alpha": hp.lognormal("alpha", 0, 1), "beta": hp.pchoice("beta", [
        (0.5, {"z": hp.normal("z", 0, 2)}), (0.5, {"w": hp.uniform("w", 0, 1)})])},
])


def test_nested_choices_become_subspaces_with_readable_keys() -> None:
    assert branching(SPACE).keys == [
        "model=svm/kernel=rbf", "model=svm/kernel=poly", "model=knn",
        "model=lin/beta=0", "model=lin/beta=1",
    ]


def test_distributions_map_to_core_classes() -> None:
    subspaces = {s.key: s.params for s in branching(SPACE).subspaces}
    svm = subspaces["model=svm/kernel=poly"]
    assert svm["C"] == Float(math.exp(-3), math.exp(3), log=True)
    assert svm["degree"] == Float(2, 5, step=1)
    knn = subspaces["model=knn"]
    assert knn["n"] == Int(1, 29)
    assert knn["act"] == Categorical((0, 1))  # a choice of constants is not a branch
    assert subspaces["model=lin/beta=0"]["alpha"] == Normal(0, 1, log=True)
    assert subspaces["model=lin/beta=0"]["z"] == Normal(0, 2)


def test_subspace_of_accepts_numpy_scalars() -> None:
    b = branching(SPACE)
    vals = {"model": [np.int64(0)], "kernel": [np.int64(1)], "C": [np.float64(1.0)],
            "degree": [np.float64(3.0)], "gamma": [], "n": [], "act": []}
    assert b.subspace_of(vals) == "model=svm/kernel=poly"
    assert b.subspace_of({"model": [np.int64(2)], "beta": [np.int64(1)]}) == "model=lin/beta=1"
    assert b.subspace_of({"model": [7]}) is None


def test_space_without_choice_is_one_subspace() -> None:
    assert branching({"x": hp.uniform("x", 0, 1)}).keys == ["all"]
    assert read_space({"x": hp.uniform("x", 0, 1)}).switches == {}


def test_a_parameter_used_in_a_branch_and_outside_is_one_unconditional_parameter() -> None:
    lr = hp.loguniform("lr", -5, 0)
    space = {"opt": hp.choice("opt", [{"t": "sgd", "lr": lr},
                                      {"t": "adam", "b": hp.uniform("b", 0, 1)}]),
             "sched_lr": lr}
    subspaces = {s.key: s.params for s in branching(space).subspaces}
    assert set(subspaces) == {"opt=sgd", "opt=adam"}
    assert set(subspaces["opt=sgd"]) == {"lr"}
    assert set(subspaces["opt=adam"]) == {"lr", "b"}


def test_fixed_branch_only_samples_that_branch() -> None:
    from hwaware_hyperopt._pyll import fix_branches

    b = branching(SPACE)
    fixed = fix_branches(SPACE, b.indices["model=lin/beta=1"], b.info.switches)
    rng = np.random.default_rng(0)
    for _ in range(20):
        point = pyll.stochastic.sample(fixed, rng=rng)
        assert point["type"] == "lin" and "w" in point["beta"]
    assert isinstance(b.info.tree.children[0], Choice)


def test_a_fixed_branch_leaves_no_distribution_for_its_choice() -> None:
    from hwaware_hyperopt._pyll import fix_branches
    from hyperopt import base

    b = branching(SPACE)
    fixed = fix_branches(SPACE, b.indices["model=svm/kernel=poly"], b.info.switches)
    # ATPE cannot read a categorical with all its mass on one option: there is none left.
    assert base.Domain(lambda p: 0.0, fixed).params.keys() == {"C", "degree"}
    assert all(node.name != "categorical" for node in pyll.dfs(fixed))
