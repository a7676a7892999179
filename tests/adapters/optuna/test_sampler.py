"""HardwareAwareSampler: placement, subspaces, restriction, and optuna features it must keep."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import optuna
import pytest
from hwaware_optuna import HardwareAwareSampler, _placement, device_for, report_peak_memory
from optuna.samplers import BaseSampler, RandomSampler
from optuna.storages import RetryFailedTrialCallback, RetryHeartbeatStaleTrialCallback
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hwaware_plugins.errors import ConfigError, LeaseTimeoutError

from ._helpers import gpu, two_branch

MakeSampler = Callable[..., HardwareAwareSampler]


def _active_leases(sampler: HardwareAwareSampler) -> int:
    assert sampler._runtime is not None
    return len(sampler._runtime.pool.active_leases())


def test_threads_never_share_a_slot(make_sampler: MakeSampler) -> None:
    sampler = make_sampler()
    intervals: list[tuple[str, float, float]] = []
    lock = threading.Lock()

    def objective(trial: optuna.trial.Trial) -> float:
        device = device_for(trial)
        start = time.monotonic()
        value = two_branch(trial)
        time.sleep(0.01)
        with lock:
            intervals.append((device.id, start, time.monotonic()))
        return value

    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=24, n_jobs=4)

    assert len(intervals) == 24
    by_slot: dict[str, list[tuple[float, float]]] = {}
    for slot, start, end in intervals:
        by_slot.setdefault(slot, []).append((start, end))
    assert set(by_slot) <= {"gpu:0", "gpu:1", "gpu:2"}
    for spans in by_slot.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, "two running trials shared a slot"
    # The slots really ran in parallel, so the check above had something to catch.
    everything = sorted((s, e) for _, s, e in intervals)
    assert any(s2 < e1 for (_, e1), (s2, _) in itertools.pairwise(everything))
    for trial in study.trials:
        assert trial.user_attrs["hwaware:device_id"] in by_slot
        assert trial.user_attrs["hwaware:trial"] == trial.number
        assert trial.user_attrs["hwaware:runtime_s"] >= 0.01
    assert _active_leases(sampler) == 0


def test_learns_the_two_branches_and_places_trials_in_them(make_sampler: MakeSampler) -> None:
    sampler = make_sampler(base_sampler=RandomSampler(seed=1))
    study = optuna.create_study(sampler=sampler)
    study.optimize(two_branch, n_trials=40)

    assert sampler.branch_names == frozenset({"classifier"})
    assert sampler.subspaces == ["classifier=forest", "classifier=svm"]
    placed = [t for t in study.trials if t.user_attrs["hwaware:subspace"] != "*"]
    assert len(placed) >= 30, "trials explore freely only until the branches are known"
    for trial in placed:
        assert trial.user_attrs["hwaware:subspace"] == f"classifier={trial.params['classifier']}"
    history = sampler.history
    assert history is not None and len(history) == 40
    assert set(history.subspaces()) == {"classifier=forest", "classifier=svm"}


def test_an_independent_categorical_is_not_a_branch(make_sampler: MakeSampler) -> None:
    def objective(trial: optuna.trial.Trial) -> float:
        trial.suggest_categorical("optimizer", ["adam", "sgd"])
        return two_branch(trial)

    sampler = make_sampler(base_sampler=RandomSampler(seed=2))
    optuna.create_study(sampler=sampler).optimize(objective, n_trials=40)
    assert sampler.branch_names == frozenset({"classifier"})


def test_declared_branch_params_split_at_once(make_sampler: MakeSampler) -> None:
    def objective(trial: optuna.trial.Trial) -> float:
        trial.suggest_categorical("optimizer", ["adam", "sgd", "rmsprop"])
        return trial.suggest_float("lr", 1e-4, 1.0, log=True)

    sampler = make_sampler(
        branch_params=["optimizer"], base_sampler=RandomSampler(seed=3), scheduler="fcfs"
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=12)

    # After the first completed trial, every optimizer value is a subspace (unseen ones as stubs).
    assert sampler.subspaces == ["optimizer=adam", "optimizer=rmsprop", "optimizer=sgd"]
    later = study.trials[1:]
    assert all(t.user_attrs["hwaware:subspace"] != "*" for t in later)
    assert {t.params["optimizer"] for t in later} == {"adam", "sgd", "rmsprop"}


class _Recording(BaseSampler):
    """Random sampling that records which past trials it was shown, per trial."""

    def __init__(self) -> None:
        self._random = RandomSampler(seed=4)
        self.seen: dict[int, list[Any]] = {}
        self.asked: dict[int, set[str]] = {}

    def infer_relative_search_space(self, study: Any, trial: FrozenTrial) -> dict[str, Any]:
        return {}

    def sample_relative(self, study: Any, trial: FrozenTrial, space: Any) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: Any, trial: FrozenTrial, name: str, dist: Any) -> Any:
        past = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True)
        self.seen[trial.number] = [t.params.get("classifier") for t in past]
        self.asked.setdefault(trial.number, set()).add(name)
        return self._random.sample_independent(study, trial, name, dist)


def test_base_sampler_sees_only_its_subspace(make_sampler: MakeSampler) -> None:
    base = _Recording()
    sampler = make_sampler(base_sampler=base)
    study = optuna.create_study(sampler=sampler)
    study.optimize(two_branch, n_trials=30)

    placed = [t for t in study.trials if t.user_attrs["hwaware:subspace"] != "*"]
    assert len(placed) >= 20
    for trial in placed:
        value = trial.params["classifier"]
        assert "classifier" not in base.asked[trial.number], "branch values come from the subspace"
        assert base.seen[trial.number], "the subspace's own trials are visible"
        assert set(base.seen[trial.number]) == {value}
    free = [t for t in study.trials if t.user_attrs["hwaware:subspace"] == "*"]
    assert free and "classifier" in base.asked[free[0].number]


def test_enqueued_trial_keeps_its_params_and_is_placed(make_sampler: MakeSampler) -> None:
    sampler = make_sampler(base_sampler=RandomSampler(seed=5))
    study = optuna.create_study(sampler=sampler)
    study.optimize(two_branch, n_trials=10)
    study.enqueue_trial({"classifier": "forest", "depth": 7})
    study.optimize(two_branch, n_trials=1)

    trial = study.trials[-1]
    assert trial.params == {"classifier": "forest", "depth": 7}
    assert trial.user_attrs["hwaware:subspace"] == "classifier=forest"
    assert trial.user_attrs["hwaware:device_id"].startswith("gpu:")
    assert trial.user_attrs["hwaware:trial"] == trial.number


@pytest.mark.filterwarnings("ignore::FutureWarning")  # deprecated in optuna 4.9, still shipped
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("retry", [RetryFailedTrialCallback, RetryHeartbeatStaleTrialCallback])
def test_retried_trial_gets_a_fresh_placement(make_sampler: MakeSampler, retry: Any) -> None:
    sampler = make_sampler(base_sampler=RandomSampler(seed=6))
    study = optuna.create_study(sampler=sampler)
    study.optimize(two_branch, n_trials=8)

    def failing(trial: optuna.trial.Trial) -> float:
        two_branch(trial)
        time.sleep(0.05)
        raise RuntimeError("node lost")

    study.optimize(failing, n_trials=1, catch=(RuntimeError,))
    failed = study.trials[-1]
    assert failed.state == TrialState.FAIL and failed.user_attrs["hwaware:runtime_s"] >= 0.05
    retry()(study, failed)
    study.optimize(two_branch, n_trials=1)

    retried = study.trials[-1]
    assert retry.retried_trial_number(retried) == failed.number
    assert retried.params == failed.params
    assert retried.user_attrs["hwaware:trial"] == retried.number
    assert retried.user_attrs["hwaware:runtime_s"] < 0.05, "not the failed trial's copied runtime"
    key = failed.user_attrs["hwaware:subspace"]
    implied = f"classifier={failed.params['classifier']}"
    assert retried.user_attrs["hwaware:subspace"] in (key, implied)
    history = sampler.history
    assert history is not None and len(history) == 10
    assert _active_leases(sampler) == 0


def test_hyperband_pruner_works_and_pruned_trials_free_their_slot(
    make_sampler: MakeSampler,
) -> None:
    def objective(trial: optuna.trial.Trial) -> float:
        value = two_branch(trial)
        for step in range(9):
            trial.report(value + (9 - step) * 0.1, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    # Subspaces are learned from completed trials only; Hyperband can prune every trial of
    # one branch, so the branching parameter is declared to make the subspaces certain.
    sampler = make_sampler(branch_params=["classifier"])
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9, reduction_factor=3)
    study = optuna.create_study(sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=40, n_jobs=2)

    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    assert all("hwaware:device_id" in t.user_attrs for t in study.trials)
    assert _active_leases(sampler) == 0
    history = sampler.history
    assert history is not None
    n_pruned = sum(
        history.failures(s, "G").get("pruned", 0) for s in history.subspaces()
    )
    placed_pruned = [
        t for t in study.trials if t.state == TrialState.PRUNED and sampler.subspaces
    ]
    assert 0 < n_pruned <= len(placed_pruned)


@pytest.mark.parametrize("first", [StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE])
def test_multi_objective_schedules_on_the_first_objective(
    make_sampler: MakeSampler, first: StudyDirection
) -> None:
    def objective(trial: optuna.trial.Trial) -> tuple[float, float]:
        value = two_branch(trial)
        return value, 1.0 - value

    sampler = make_sampler()
    study = optuna.create_study(sampler=sampler, directions=[first, StudyDirection.MINIMIZE])
    study.optimize(objective, n_trials=30)

    assert len(study.best_trials) >= 1
    firsts = [t.values[0] for t in study.trials if t.state == TrialState.COMPLETE]
    expected = min(firsts) if first == StudyDirection.MINIMIZE else -max(firsts)
    history = sampler.history
    assert history is not None
    assert history.best_loss() == pytest.approx(expected)


def test_memory_packing_shares_a_gpu_between_small_trials(tmp_path: Any) -> None:
    def make(packing: str) -> optuna.Study:
        sampler = HardwareAwareSampler(
            devices=[gpu(0, memory_mb=1000)],
            packing=packing,
            lease_timeout=0.2,
            state_dir=tmp_path / packing,
            seed=0,
        )
        study = optuna.create_study(sampler=sampler)
        first = study.ask()
        report_peak_memory(first, 300)
        study.tell(first, 0.5)
        return study

    shared = make("memory")
    a, b = shared.ask(), shared.ask()
    assert device_for(a).id == device_for(b).id == "gpu:0"
    shared.tell(a, 0.1)
    shared.tell(b, 0.2)

    exclusive = make("exclusive")
    held = exclusive.ask()
    with pytest.raises(LeaseTimeoutError):
        exclusive.ask()
    assert exclusive.trials[-1].state == TrialState.FAIL, "an unplaced trial does not linger"
    exclusive.tell(held, 0.1)


def test_one_sampler_serves_one_study(make_sampler: MakeSampler) -> None:
    sampler = make_sampler()
    optuna.create_study(sampler=sampler).optimize(two_branch, n_trials=1)
    with pytest.raises(ConfigError, match="one sampler per study"):
        optuna.create_study(sampler=sampler).ask()


def test_failed_trials_release_their_lease(make_sampler: MakeSampler) -> None:
    sampler = make_sampler()

    def failing(trial: optuna.trial.Trial) -> float:
        raise ValueError("bad")

    study = optuna.create_study(sampler=sampler)
    study.optimize(failing, n_trials=5, catch=(ValueError,))
    assert _active_leases(sampler) == 0
    assert all(t.user_attrs["hwaware:runtime_s"] >= 0 for t in study.trials)


class _BadScheduler:
    name = "bad"

    def setup(self, subspaces: Sequence[Any], device_classes: Sequence[Any]) -> None:
        pass

    def choose(self, device_class: str, history: Any) -> str:
        return "no-such-subspace"


def test_a_failed_placement_releases_the_lease(make_sampler: MakeSampler) -> None:
    sampler = make_sampler(scheduler=_BadScheduler(), branch_params=["classifier"])
    study = optuna.create_study(sampler=sampler)
    study.optimize(two_branch, n_trials=1)  # explores freely: nothing known yet
    with pytest.raises(Exception, match="not one of the subspaces"):
        study.optimize(two_branch, n_trials=1)
    assert _active_leases(sampler) == 0
    assert study.trials[-1].state == TrialState.FAIL


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"branch_params": "classifier"}, "branch_params must be a list"),
        ({"lease_timeout": -1}, "lease_timeout must be"),
        ({"scheduler": object()}, "setup\\(\\) and choose\\(\\)"),
        ({"packing": "tight"}, "packing"),
        ({"base_sampler": "tpe"}, "base_sampler must be an optuna sampler object"),
        ({"family_of": 3}, "family_of must be None or a function"),
        ({"devices": ""}, "devices is an empty string"),
    ],
)
def test_bad_arguments_fail_at_the_first_trial_with_one_line(
    make_sampler: MakeSampler, kwargs: dict[str, Any], message: str
) -> None:
    sampler = make_sampler(**kwargs)  # constructing never raises
    study = optuna.create_study(sampler=sampler)
    with pytest.raises(ConfigError, match=message) as error:
        study.ask()
    assert "\n" not in str(error.value)


def test_a_float_branch_parameter_is_refused(make_sampler: MakeSampler) -> None:
    sampler = make_sampler(branch_params=["C"])
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({"classifier": "svm"})
    study.optimize(two_branch, n_trials=1)
    with pytest.raises(ConfigError, match="branch parameter 'C' is a float"):
        study.ask()


def test_asking_past_the_slots_in_one_thread_is_warned_of_and_still_waits(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # ask() twice on one slot without a tell waits for ever unless another thread tells
    # the first trial; the wait says so, and still ends when that other thread does.
    monkeypatch.setattr(_placement, "SELF_BLOCK_WARNING_S", 0.2)
    sampler = HardwareAwareSampler(devices=[gpu(0)], state_dir=tmp_path, seed=0)
    study = optuna.create_study(sampler=sampler)
    first = study.ask()
    teller = threading.Timer(1.0, study.tell, args=(first, 0.5))
    teller.start()
    with caplog.at_level(logging.WARNING, logger="hwaware_optuna"):
        second = study.ask()
    teller.join()
    study.tell(second, 0.1)
    [message] = [m for m in caplog.messages if "asked in this same thread" in m]
    assert "lease_timeout" in message
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2


def test_threads_waiting_for_each_others_slots_are_not_warned_of(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_placement, "SELF_BLOCK_WARNING_S", 0.05)
    sampler = HardwareAwareSampler(devices=[gpu(0)], state_dir=tmp_path, seed=0)
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.trial.Trial) -> float:
        time.sleep(0.2)
        return trial.suggest_float("x", 0, 1)

    with caplog.at_level(logging.WARNING, logger="hwaware_optuna"):
        study.optimize(objective, n_trials=4, n_jobs=2)
    assert not [m for m in caplog.messages if "asked in this same thread" in m]
