"""HardwareAwareSampler keeps Optuna's contracts: pickling, no stray RUNNING trials, warnings."""

from __future__ import annotations

import copy
import pickle
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import optuna
import pytest
from hwaware_optuna import HardwareAwareSampler
from optuna.samplers import RandomSampler
from optuna.trial import TrialState

from hwaware_plugins.errors import HwawareError

from ._helpers import gpu, two_branch

MakeSampler = Callable[..., HardwareAwareSampler]


def _placed(study: optuna.Study) -> list[str]:
    return [t.user_attrs["hwaware:device_id"] for t in study.trials]


def test_a_used_sampler_pickles_and_deep_copies_and_keeps_sampling(
    make_sampler: MakeSampler,
) -> None:
    sampler = make_sampler(base_sampler=RandomSampler(seed=1))
    study = optuna.create_study(sampler=sampler)
    study.optimize(two_branch, n_trials=6)
    for twin in (pickle.loads(pickle.dumps(sampler)), copy.deepcopy(sampler)):
        assert isinstance(twin, HardwareAwareSampler)
        assert twin.seed == 0 and twin.devices == sampler.devices
        other = optuna.create_study(sampler=twin)
        other.optimize(two_branch, n_trials=3, n_jobs=2)  # fresh lock: threads still work
        assert len(_placed(other)) == 3
    # The copies share nothing with the original, which goes on as before.
    study.optimize(two_branch, n_trials=2)
    assert len(_placed(study)) == 8


def test_the_base_samplers_state_survives_the_round_trip(make_sampler: MakeSampler) -> None:
    """Same base-sampler RNG state after unpickling: the copy and the original agree."""
    sampler = make_sampler(base_sampler=RandomSampler(seed=5), scheduler="fcfs")
    study = optuna.create_study(sampler=sampler)
    study.optimize(two_branch, n_trials=4)
    twin_study = pickle.loads(pickle.dumps(study))
    study.optimize(two_branch, n_trials=3)
    twin_study.optimize(two_branch, n_trials=3)
    assert [t.params for t in twin_study.trials] == [t.params for t in study.trials]


def test_a_study_round_trips_through_pickle_and_joblib_and_optimizes_on(
    make_sampler: MakeSampler, tmp_path: Path
) -> None:
    study = optuna.create_study(sampler=make_sampler())
    study.optimize(two_branch, n_trials=5, n_jobs=2)
    joblib.dump(study, tmp_path / "study.pkl")
    for restored in (pickle.loads(pickle.dumps(study)), joblib.load(tmp_path / "study.pkl")):
        assert isinstance(restored.sampler, HardwareAwareSampler)
        restored.optimize(two_branch, n_trials=4, n_jobs=2)
        assert len(restored.trials) == 9
        assert all(t.state == TrialState.COMPLETE for t in restored.trials)
        assert all(d.startswith("gpu:") for d in _placed(restored))


def test_pickling_while_trials_run_is_safe(make_sampler: MakeSampler) -> None:
    sampler = make_sampler()
    study = optuna.create_study(sampler=sampler)
    started = threading.Event()
    release = threading.Event()

    def slow(trial: optuna.trial.Trial) -> float:
        started.set()
        release.wait(5)
        return two_branch(trial)

    worker = threading.Thread(target=study.optimize, args=(slow,), kwargs={"n_trials": 1})
    worker.start()
    try:
        assert started.wait(5)
        twin = pickle.loads(pickle.dumps(sampler))  # one lease held by the running trial
    finally:
        release.set()
        worker.join(5)
    assert study.trials[0].state == TrialState.COMPLETE
    assert twin.history is None  # rebuilt from the storage at its next trial


def _bad_devices_file(tmp_path: Path) -> Path:
    path = tmp_path / "devices.toml"
    path.write_text("this is = not [valid toml\n", encoding="utf-8")
    return path


def test_bad_arguments_leave_no_running_trial(tmp_path: Path) -> None:
    """The issue's scenario: SQLite, load_if_exists=True, each typo tried twice, then the fix."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    good: dict[str, Any] = {"devices": [gpu(0)], "state_dir": tmp_path / "pool", "seed": 0}

    def attempt(**kwargs: Any) -> optuna.Study:
        sampler = HardwareAwareSampler(**{**good, **kwargs})
        return optuna.create_study(
            storage=storage, study_name="s", load_if_exists=True, sampler=sampler
        )

    for bad in (
        {"scheduler": "nope"},
        {"devices": str(tmp_path / "missing-devices.toml")},
        {"devices": str(_bad_devices_file(tmp_path))},
        {"lease_timeout": -1},
        {"base_sampler": "tpe"},
        {"family_of": 3},
    ):
        with pytest.raises(HwawareError) as error:
            attempt(**bad).optimize(two_branch, n_trials=1)
        assert "\n" not in str(error.value), bad
        with pytest.raises(HwawareError):
            attempt(**bad).ask()
        assert attempt().get_trials(states=(TrialState.RUNNING,)) == [], bad
    study = attempt()
    study.optimize(two_branch, n_trials=2)
    assert study.get_trials(states=(TrialState.RUNNING,)) == []
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2


def test_a_branch_param_no_trial_suggests_is_warned_of_once(make_sampler: MakeSampler) -> None:
    sampler = make_sampler(branch_params=["classifer"])  # a typo of "classifier"
    study = optuna.create_study(sampler=sampler)
    with pytest.warns(UserWarning, match="'classifer' but none of the first 10") as caught:
        study.optimize(two_branch, n_trials=14)
    assert len([w for w in caught if "classifer" in str(w.message)]) == 1


def test_a_branch_param_that_appears_is_not_warned_of(make_sampler: MakeSampler) -> None:
    sampler = make_sampler(branch_params=["classifier"])
    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        study.optimize(two_branch, n_trials=12)


def test_a_bad_seed_is_refused_by_name() -> None:
    for seed in ("0", 1.5, True):
        with pytest.raises(HwawareError, match="seed must be None or an integer"):
            HardwareAwareSampler(seed=seed)  # type: ignore[arg-type]


def test_a_trial_that_could_not_be_placed_records_why(tmp_path: Path) -> None:
    sampler = HardwareAwareSampler(devices=[gpu(0)], state_dir=tmp_path, scheduler="nope")
    study = optuna.create_study(sampler=sampler)
    with pytest.raises(HwawareError):
        study.optimize(two_branch, n_trials=1)
    [trial] = study.trials
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["hwaware:fail_reason"].startswith(
        "error: placing the trial failed: UnknownComponentError: unknown scheduler 'nope'"
    )


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("sampler_class", [optuna.samplers.NSGAIISampler,
                                           optuna.samplers.NSGAIIISampler])
def test_genetic_base_samplers_run_a_branching_multi_objective_study(
    tmp_path: Path, sampler_class: type[optuna.samplers.BaseSampler]
) -> None:
    # Seen through a subspace view, a small population's parent cache named trials of
    # another subspace and crossover found no parents ("a must be greater than 0").
    base = sampler_class(seed=0, population_size=4)  # type: ignore[call-arg]
    sampler = HardwareAwareSampler(base, devices=[gpu(0)], state_dir=tmp_path, seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)

    def objective(trial: optuna.trial.Trial) -> tuple[float, float]:
        branch = trial.suggest_categorical("m", ["a", "b"])
        x = trial.suggest_float("x" + branch, 0, 1)
        return x, 1 - x

    study.optimize(objective, n_trials=30)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 30
