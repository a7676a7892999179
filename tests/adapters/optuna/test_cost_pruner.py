"""CostAwarePruner: per-step cost timed between reports, budget and k x median rules."""

from __future__ import annotations

import datetime
import pickle
from typing import Any

import optuna
import pytest
from hwaware_optuna import CostAwarePruner, _cost_pruner
from hwaware_optuna._cost_pruner import per_step_seconds, projected_seconds, should_stop
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from hwaware_plugins.errors import ConfigError

DISTS: dict[str, Any] = {
    "classifier": CategoricalDistribution(["svm", "forest"]),
    "C": FloatDistribution(1e-3, 1e3, log=True),
    "depth": IntDistribution(1, 10),
}


def test_per_step_cost_is_timed_between_reports_only() -> None:
    assert per_step_seconds(0, 100.0, 4, 108.0) == pytest.approx(2.0)
    assert per_step_seconds(3, 100.0, 3, 150.0) is None  # one report: nothing timed yet


def test_projection_extrapolates_the_per_step_cost_never_the_start_up() -> None:
    # 30 s spent (25 of them start-up), 1 s per step, 6 steps left of 10.
    assert projected_seconds(30.0, 1.0, 3, 9.0) == pytest.approx(36.0)
    assert projected_seconds(30.0, 1.0, 9, 9.0) == 30.0  # done: no extrapolation
    assert projected_seconds(30.0, None, 3, 9.0) == 30.0  # per-step cost not known yet
    assert projected_seconds(30.0, 1.0, 3, None) == 30.0  # no typical final step known


def test_stop_rules() -> None:
    peers = [1.0, 1.1, 0.9, 1.0, 1.0]
    kwargs: dict[str, Any] = {"budget_device_seconds": None, "k_median": 3.0, "min_trials": 5}
    assert should_stop(10.0, 3.1, peers, **kwargs) is True
    assert should_stop(10.0, 2.9, peers, **kwargs) is False
    assert should_stop(10.0, 3.1, peers[:4], **kwargs) is False  # too few peers
    assert should_stop(10.0, None, peers, **kwargs) is False  # not measured yet
    assert should_stop(61.0, None, [], budget_device_seconds=60.0, k_median=None, min_trials=5)


def _complete(study: optuna.Study, classifier: str, runtime_s: float, device_class: str) -> None:
    params = {"classifier": classifier, "depth": 3} if classifier == "forest" else {
        "classifier": classifier, "C": 1.0
    }
    number = len(study.trials)
    study.add_trial(
        optuna.trial.create_trial(
            params=params,
            distributions={k: DISTS[k] for k in params},
            value=0.5,
            intermediate_values={step: 0.5 for step in range(10)},
            user_attrs={
                "hwaware:trial": number,
                "hwaware:device_class": device_class,
                "hwaware:runtime_s": runtime_s,
            },
        )
    )


def _running(step: int, seconds_ago: float, device_class: str = "cpu") -> FrozenTrial:
    return FrozenTrial(
        number=99,
        trial_id=99,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=datetime.datetime.now() - datetime.timedelta(seconds=seconds_ago),
        datetime_complete=None,
        params={"classifier": "forest", "depth": 3},
        distributions={"classifier": DISTS["classifier"], "depth": DISTS["depth"]},
        user_attrs={"hwaware:trial": 99, "hwaware:device_class": device_class},
        system_attrs={},
        intermediate_values={s: 0.5 for s in range(step + 1)},
    )


class FakeClock:
    """Replaces the pruner's monotonic clock: ``now`` is set by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(_cost_pruner, "_now", fake)
    return fake


def _verdicts(
    pruner: CostAwarePruner,
    study: optuna.Study,
    clock: FakeClock,
    step_s: float,
    *,
    start_up_s: float = 0.0,
    device_class: str = "cpu",
) -> list[bool]:
    """The pruner's verdict at steps 0..4 of a trial taking ``step_s`` per step."""
    verdicts = []
    for step in range(5):
        clock.now = step * step_s
        trial = _running(step, start_up_s + step * step_s, device_class)
        verdicts.append(pruner.prune(study, trial))
    return verdicts


@pytest.fixture
def study() -> optuna.Study:
    study = optuna.create_study()
    for _ in range(5):
        _complete(study, "forest", 10.0, "cpu")  # forests take 10 s on the CPU
        _complete(study, "forest", 1.0, "gpu")
        _complete(study, "svm", 1000.0, "cpu")  # another subspace: must not count
    return study


def test_a_trial_whose_steps_cost_far_more_than_its_peers_is_pruned(
    study: optuna.Study, clock: FakeClock
) -> None:
    # Peers: forests take 10 s for 10 steps on the CPU (1 s per step), 1 s on the GPU.
    assert _verdicts(CostAwarePruner(), study, clock, 5.0) == [False, False, True, True, True]
    assert not any(_verdicts(CostAwarePruner(), study, clock, 1.2))
    # On the GPU class, 1 s per step for a 0.1 s step is far too slow.
    assert any(_verdicts(CostAwarePruner(), study, clock, 1.0, device_class="gpu"))


def test_start_up_cost_never_counts_as_per_step_cost(
    study: optuna.Study, clock: FakeClock
) -> None:
    """500 s of data loading before the first report, then steps as fast as the peers'."""
    assert not any(_verdicts(CostAwarePruner(), study, clock, 1.0, start_up_s=500.0))


def test_budget_applies_without_peers(clock: FakeClock) -> None:
    empty = optuna.create_study()
    pruner = CostAwarePruner(budget_device_seconds=60.0, k_median=None)
    assert pruner.prune(empty, _running(step=2, seconds_ago=61.0)) is True
    assert pruner.prune(empty, _running(step=2, seconds_ago=30.0)) is False


def test_budget_projects_the_steps_left(study: optuna.Study, clock: FakeClock) -> None:
    """Typical final step 9: at step 2, 10 s spent plus 7 steps of 5 s left passes 40 s."""
    pruner = CostAwarePruner(budget_device_seconds=40.0, k_median=None)
    assert _verdicts(pruner, study, clock, 5.0, start_up_s=0.0) == [False, False, True, True, True]
    assert not any(_verdicts(CostAwarePruner(budget_device_seconds=40.0), study, clock, 2.0))


def test_a_trial_without_reports_is_never_pruned(study: optuna.Study) -> None:
    trial = _running(step=0, seconds_ago=500.0)
    trial.intermediate_values = {}
    assert CostAwarePruner(budget_device_seconds=1.0).prune(study, trial) is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget_device_seconds": 0}, "budget_device_seconds must be None or > 0"),
        ({"k_median": -1.0}, "k_median must be None or > 0"),
        ({"min_trials": 0}, "min_trials must be an integer >= 1"),
    ],
)
def test_bad_settings_raise_at_use(
    study: optuna.Study, kwargs: dict[str, Any], message: str
) -> None:
    pruner = CostAwarePruner(**kwargs)
    with pytest.raises(ConfigError, match=message):
        pruner.prune(study, _running(step=1, seconds_ago=1.0))


def test_clocks_of_finished_trials_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cost_pruner, "_KEEP_CLOCKS", 3)
    pruner = CostAwarePruner()

    def objective(trial: optuna.trial.Trial) -> float:
        for step in range(3):
            trial.report(0.5, step)
            trial.should_prune()
        return 0.5

    study = optuna.create_study(pruner=pruner)
    study.optimize(objective, n_trials=10)
    assert len(pruner._clocks) <= 4
    assert all(t.user_attrs["hwaware:step_s"] >= 0 for t in study.trials)
    twin = pickle.loads(pickle.dumps(pruner))
    assert twin._clocks == {} and twin.k_median == pruner.k_median
