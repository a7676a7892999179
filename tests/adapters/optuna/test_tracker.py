"""SubspaceTracker: subspaces (with stubs) and the history learned from outcomes."""

from __future__ import annotations

from typing import Any

import pytest
from hwaware_optuna._attrs import Outcome
from hwaware_optuna._tracker import SubspaceTracker
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hwaware_plugins.errors import SearchSpaceError

CLASSIFIER = CategoricalDistribution(["svm", "forest", "knn"])
_ids = iter(range(10_000))


def outcome(
    params: dict[str, Any], *, state: str = "complete", loss: float | None = 0.5, cls: str = "G"
) -> Outcome:
    dists: dict[str, Any] = {"classifier": CLASSIFIER}
    if "C" in params:
        dists["C"] = FloatDistribution(1e-3, 1e3, log=True)
    for name in ("depth", "k"):
        if name in params:
            dists[name] = IntDistribution(1, 10)
    return Outcome(
        trial_id=next(_ids),
        params=params,
        distributions=dists,
        state=state,
        device_class=cls,
        placed_subspace=None,
        runtime_s=1.0,
        loss=loss if state == "complete" else None,
        peak_memory_mb=None,
        finished_at=None,
    )


def feed(tracker: SubspaceTracker) -> None:
    for i in range(3):
        tracker.add(outcome({"classifier": "svm", "C": 1.0 + i}, loss=0.1 * i))
        tracker.add(outcome({"classifier": "forest", "depth": i + 1}, loss=0.5))


def test_detected_subspaces_with_a_stub_for_the_unused_value() -> None:
    tracker = SubspaceTracker()
    feed(tracker)
    assert tracker.refresh() is True
    assert tracker.branch_names == {"classifier"}
    subspaces = tracker.subspaces
    assert list(subspaces) == ["classifier=forest", "classifier=knn", "classifier=svm"]
    assert subspaces["classifier=knn"].n_complete == 0  # stub: never starved
    assert set(subspaces["classifier=svm"].params) == {"C"}
    assert tracker.history.count("classifier=svm") == 3
    assert tracker.history.best_loss("classifier=svm") == pytest.approx(0.0)


def test_nothing_branches_until_detection_has_support() -> None:
    tracker = SubspaceTracker()
    tracker.add(outcome({"classifier": "svm", "C": 1.0}))
    tracker.refresh()
    assert tracker.subspaces == {}
    assert len(tracker.history) == 0


def test_declared_branches_give_subspaces_after_one_trial() -> None:
    tracker = SubspaceTracker(declared=["classifier"])
    tracker.add(outcome({"classifier": "svm", "C": 1.0}))
    tracker.refresh()
    assert list(tracker.subspaces) == ["classifier=forest", "classifier=knn", "classifier=svm"]


def test_history_is_incremental_and_rebuilt_when_subspaces_change() -> None:
    tracker = SubspaceTracker()
    feed(tracker)
    tracker.refresh()
    version = tracker.version
    tracker.add(outcome({"classifier": "svm", "C": 3.0}, state="fail"))
    assert tracker.refresh() is False and tracker.version == version
    assert tracker.history.failures("classifier=svm", "G") == {"fail": 1}
    # The stub becomes a real subspace: same keys, but its parameters are now known.
    tracker.add(outcome({"classifier": "knn", "k": 3}))
    assert tracker.refresh() is True and tracker.version == version + 1
    assert len(tracker.history) == 8


def test_outcomes_are_added_once_and_unplaced_ones_stay_out_of_history() -> None:
    tracker = SubspaceTracker()
    feed(tracker)
    twice = outcome({"classifier": "svm", "C": 2.0})
    tracker.add(twice)
    tracker.add(twice)
    tracker.add(
        Outcome(**{**outcome({"classifier": "svm", "C": 2.0}).__dict__, "device_class": None})
    )
    tracker.refresh()
    assert tracker.seen(twice.trial_id)
    assert tracker.history.count("classifier=svm") == 4


def test_a_float_branch_parameter_is_refused() -> None:
    tracker = SubspaceTracker(declared=["C"])
    tracker.add(outcome({"classifier": "svm", "C": 1.0}))
    with pytest.raises(SearchSpaceError, match="'C' is a float"):
        tracker.refresh()
