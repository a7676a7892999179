"""StudyView: a study whose trial lists keep only the trials passing a filter."""

from __future__ import annotations

import optuna
import pytest
from hwaware_optuna._view import StudyView, TrialFilter, as_study
from optuna.trial import TrialState


@pytest.fixture
def study() -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for i in range(6):
        branch = "a" if i % 2 else "b"
        study.enqueue_trial({"branch": branch, "x": float(i)})
        trial = study.ask()
        trial.suggest_categorical("branch", ["a", "b"])
        study.tell(trial, trial.suggest_float("x", 0, 10))
    return study


def test_trial_lists_and_best_trial_are_restricted(study: optuna.Study) -> None:
    view = as_study(StudyView(study, lambda t: t.params.get("branch") == "b"))
    assert [t.params["x"] for t in view.get_trials()] == [0.0, 2.0, 4.0]
    assert len(view.trials) == 3
    complete = view._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert {t.params["branch"] for t in complete} == {"b"}
    assert view.best_value == 4.0 and view.best_params == {"branch": "b", "x": 4.0}
    assert view.direction == study.direction  # everything else is the real study's
    assert study.best_value == 5.0


def test_a_cached_list_is_filtered_once_per_trial(study: optuna.Study) -> None:
    calls: list[int] = []

    def keep(trial: optuna.trial.FrozenTrial) -> bool:
        calls.append(trial.number)
        return trial.params.get("branch") == "a"

    view = as_study(StudyView(study, TrialFilter(keep)))
    first = view._get_trials(deepcopy=False, use_cache=True)
    again = view._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True)
    assert [t.number for t in first] == [t.number for t in again] == [1, 3, 5]
    assert len(calls) == 6  # one pass over the cached list, not two
    view._get_trials(deepcopy=False)
    assert len(calls) == 12  # uncached reads are filtered afresh


def test_no_completed_trial_in_the_view(study: optuna.Study) -> None:
    view = as_study(StudyView(study, lambda t: False))
    with pytest.raises(ValueError, match="no completed trial"):
        _ = view.best_trial
