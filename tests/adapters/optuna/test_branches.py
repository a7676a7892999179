"""Branch detection and subspace keys (pure functions)."""

from __future__ import annotations

import random
from typing import Any

from hwaware_optuna._branches import (
    BranchDetector,
    branch_key,
    branch_of,
    consistent,
    extends,
)
from hypothesis import given
from hypothesis import strategies as st


def _svm_trial(rng: random.Random) -> dict[str, Any]:
    """A trial of a CASH space: svm (kernel rbf: gamma; poly: degree) or a forest."""
    params: dict[str, Any] = {"optimizer": rng.choice(["adam", "sgd"])}
    if rng.random() < 0.5:
        params.update(classifier="svm", C=rng.random())
        if rng.random() < 0.5:
            params.update(kernel="rbf", gamma=rng.random())
        else:
            params.update(kernel="poly", degree=rng.randint(2, 5))
    else:
        params.update(classifier="forest", depth=rng.randint(1, 9))
    return params


def _detect(trials: list[dict[str, Any]]) -> frozenset[str]:
    detector = BranchDetector()
    for params in trials:
        detector.add(params, [n for n in ("optimizer", "classifier", "kernel") if n in params])
    return frozenset(detector.branching())


def test_nested_branches_are_detected_and_independent_categoricals_are_not() -> None:
    rng = random.Random(0)
    trials = [_svm_trial(rng) for _ in range(40)]
    assert _detect(trials) == {"classifier", "kernel"}


def test_nothing_is_detected_from_too_few_trials() -> None:
    # One trial per value: below min_support (2) on each side.
    assert _detect([{"classifier": "svm", "C": 1.0}, {"classifier": "forest", "depth": 3}]) == set()
    two_each = [{"classifier": "svm", "C": 1.0}] * 2 + [{"classifier": "forest", "depth": 3}] * 2
    assert _detect(two_each) == {"classifier"}


def test_a_value_without_extra_parameters_still_branches() -> None:
    detector = BranchDetector()
    for dropout in (True, True, False, False):
        params: dict[str, Any] = {"dropout": dropout, "lr": 0.1}
        if dropout:
            params["rate"] = 0.5
        detector.add(params, ["dropout"])
    assert detector.branching() == {"dropout"}
    assert detector.observed_values("dropout") == {True, False}


def test_keys_are_sorted_readable_and_stable() -> None:
    params = {"kernel": "rbf", "C": 1.0, "classifier": "svm"}
    branch = branch_of(params, {"classifier", "kernel", "absent"})
    assert branch == (("classifier", "svm"), ("kernel", "rbf"))
    assert branch_key(branch) == "classifier=svm/kernel=rbf"
    assert branch_key(()) == "*"


def test_membership_and_consistency() -> None:
    branch = (("classifier", "svm"), ("kernel", "rbf"))
    assert extends({"classifier": "svm", "kernel": "rbf", "gamma": 1}, branch)
    assert not extends({"classifier": "svm"}, branch)  # a running trial not yet there
    assert not extends({"classifier": "svm", "kernel": "poly"}, branch)
    assert consistent(branch, {"classifier": "svm"})
    assert not consistent(branch, {"classifier": "forest"})
    assert not consistent((("classifier", "forest"),), {"kernel": "rbf"})


names = st.text(alphabet="abcdefgh", min_size=1, max_size=3)


@given(st.dictionaries(names, st.integers(0, 3), max_size=6), st.sets(names, max_size=6))
def test_key_does_not_depend_on_parameter_order(params: dict[str, int], chosen: set[str]) -> None:
    reordered = dict(reversed(list(params.items())))
    assert branch_key(branch_of(params, chosen)) == branch_key(branch_of(reordered, chosen))
    assert extends(params, branch_of(params, chosen))


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=4, max_size=40))
def test_detection_agrees_with_a_brute_force_reading_of_the_rule(
    rows: list[tuple[bool, bool]],
) -> None:
    # "flag" is a categorical; "x" is present in some trials. The rule flags "flag" iff,
    # for a value v with >= 2 trials and >= 2 trials of the other value, x is present
    # exactly in the trials with flag == v.
    detector = BranchDetector()
    trials = []
    for flag, has_x in rows:
        params: dict[str, Any] = {"flag": flag, "y": 0}
        if has_x:
            params["x"] = 1
        trials.append(params)
        detector.add(params, ["flag"])
    expected = False
    for value in (True, False):
        same = [t for t in trials if t["flag"] == value]
        other = [t for t in trials if t["flag"] != value]
        supported = len(same) >= 2 and len(other) >= 2
        if supported and all("x" in t for t in same) and not any("x" in t for t in other):
            expected = True
    assert ("flag" in detector.branching()) == expected
