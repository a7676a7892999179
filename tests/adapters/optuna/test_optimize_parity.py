"""``optimize`` keeps what ``Study.optimize`` gives: the study's pruner, queued trials,
``study.stop()``, callbacks, and a reason for every failed trial."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from hwaware_optuna import CostAwarePruner, HardwareAwareSampler
from hwaware_optuna._optimize import optimize
from hwaware_optuna._trial_task import value_problem
from hwaware_optuna._worker_node import load_pruner
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from hwaware_plugins.errors import ConfigError, HwawareError

FAIL_REASON = "hwaware:fail_reason"


@pytest.fixture
def devices(tmp_path: Path) -> Path:
    path = tmp_path / "devices.toml"
    path.write_text('[[device]]\nkind = "cpu"\ncount = 2\n', encoding="utf-8")
    return path


def _study(tmp_path: Path, devices: Path, **kwargs: object) -> optuna.Study:
    sampler = HardwareAwareSampler(devices=devices, seed=0, state_dir=tmp_path / "pool")
    return optuna.create_study(sampler=sampler, **kwargs)  # type: ignore[arg-type]


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def reporting(trial: optuna.trial.Trial) -> float:
    x = trial.suggest_float("x", 0, 1)
    for step in range(3):
        trial.report(x, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return x


@pytest.mark.parametrize(("pruner", "pruned"), [(optuna.pruners.NopPruner(), 0),
                                                (AlwaysPrune(), 6)])
def test_the_workers_ask_the_studys_own_pruner(
    tmp_path: Path, devices: Path, pruner: optuna.pruners.BasePruner, pruned: int
) -> None:
    study = _study(tmp_path, devices, pruner=pruner)
    optimize(study, reporting, n_trials=6)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.PRUNED) == pruned
    assert states.count(TrialState.COMPLETE) == 6 - pruned


def test_queued_trials_of_an_in_memory_study_get_their_results(
    tmp_path: Path, devices: Path
) -> None:
    study = _study(tmp_path, devices)
    study.enqueue_trial({"x": 0.25})
    study.enqueue_trial({"x": 0.5})
    optimize(study, lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert [t.params["x"] for t in trials[:2]] == [0.25, 0.5]
    assert [t.value for t in trials[:2]] == [0.25, 0.5]
    assert trials[0].user_attrs["hwaware:device_class"]


def stop_at_two(trial: optuna.trial.Trial) -> float:
    if trial.number >= 2:
        trial.study.stop()
    return trial.suggest_float("x", 0, 1)


def test_study_stop_in_the_objective_starts_no_new_trial(tmp_path: Path, devices: Path) -> None:
    study = _study(tmp_path, devices)
    optimize(study, stop_at_two, n_trials=30)
    trials = study.trials
    assert 3 <= len(trials) <= 4  # the trial that stopped, and at most the other slot's
    assert all(t.state == TrialState.COMPLETE for t in trials)


def test_a_grid_sampler_ends_the_run_once_its_grid_is_done(tmp_path: Path, devices: Path) -> None:
    grid = optuna.samplers.GridSampler({"x": [0.0, 0.5, 1.0]}, seed=0)
    study = optuna.create_study(sampler=grid)
    optimize(study, lambda t: t.suggest_float("x", 0, 1), n_trials=20, devices=devices)
    assert {t.params["x"] for t in study.trials} == {0.0, 0.5, 1.0}
    assert len(study.trials) <= 4
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def not_a_number(trial: optuna.trial.Trial) -> object:
    return [float("nan"), None, "high"][trial.number % 3]


def test_a_value_that_is_not_a_number_fails_with_its_reason(
    tmp_path: Path, devices: Path
) -> None:
    study = _study(tmp_path, devices)
    optimize(study, not_a_number, n_trials=3)
    reasons = sorted(t.user_attrs[FAIL_REASON] for t in study.trials)
    assert all(t.state == TrialState.FAIL for t in study.trials)
    assert reasons == [
        "error: the objective returned 'high', not a number",
        "error: the objective returned None, not a number",
        "error: the objective returned nan",
    ]


def test_value_problem() -> None:
    assert value_problem(1, 1) is None
    assert value_problem((1.0, 2), 2) is None
    assert value_problem([1.0], 2) == "the objective returned 1 values for a study of 2 objectives"
    assert value_problem(float("inf"), 1) is None  # optuna accepts infinities


def test_callbacks_see_every_ended_trial_and_may_stop_the_run(
    tmp_path: Path, devices: Path
) -> None:
    seen: list[tuple[int, TrialState]] = []
    study = _study(tmp_path, devices)
    optimize(study, lambda t: t.suggest_float("x", 0, 1), n_trials=40, callbacks=[
        lambda s, t: seen.append((t.number, t.state)),
        MaxTrialsCallback(4, states=(TrialState.COMPLETE,)),
    ])
    assert 4 <= len(study.trials) <= 6
    assert sorted(seen) == [(t.number, TrialState.COMPLETE) for t in study.trials]


def test_bad_callbacks_and_memory_are_refused_with_their_names(
    tmp_path: Path, devices: Path
) -> None:
    study = _study(tmp_path, devices)
    with pytest.raises(ConfigError, match="callbacks must be callables"):
        optimize(study, lambda t: 0.0, n_trials=1, callbacks=[3])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="memory_mb must be None or a number of MiB > 0"):
        optimize(study, lambda t: 0.0, n_trials=1, memory_mb=0)
    assert study.trials == []


@pytest.mark.parametrize(
    ("sampler_setting", "pruner", "match"),
    [
        ({"scheduler": "hwawre"}, None, "unknown scheduler 'hwawre'"),
        ({"complexity_rule": "shado"}, None, "shado"),
        ({"branch_params": "model"}, None, "branch_params must be a list"),
        ({"packing": "mem"}, None, "unknown packing 'mem'"),
        ({"pool_name": "a b"}, None, "invalid pool name 'a b'"),
        ({"skip_foreign_processes": "no"}, None, "skip_foreign_processes must be True or False"),
        ({}, CostAwarePruner(k_median="3"), "k_median must be None or > 0"),  # type: ignore[arg-type]
    ],
)
def test_bad_sampler_and_pruner_settings_stop_optimize_before_any_trial(
    tmp_path: Path, devices: Path, sampler_setting: dict[str, object],
    pruner: optuna.pruners.BasePruner | None, match: str,
) -> None:
    # The workers build the sampler and run the pruner: these errors used to fail every
    # trial of the run one by one (with no reason recorded) and optimize returned normally.
    sampler = HardwareAwareSampler(devices=devices, seed=0, state_dir=tmp_path / "pool",
                                   **sampler_setting)  # type: ignore[arg-type]
    study = optuna.create_study(sampler=sampler, pruner=pruner)
    with pytest.raises(HwawareError, match=match) as error:
        optimize(study, lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert "\n" not in str(error.value)
    assert study.trials == []


def test_callbacks_must_be_a_list() -> None:
    study = optuna.create_study()
    with pytest.raises(ConfigError, match="callbacks must be a list of callables"):
        optimize(study, lambda t: 0.0, n_trials=1, callbacks=print)  # type: ignore[arg-type]


def test_hwaware_worker_loads_a_pruner_by_name() -> None:
    assert isinstance(load_pruner("optuna.pruners:NopPruner"), optuna.pruners.NopPruner)
    assert isinstance(load_pruner("tests.adapters.optuna.test_optimize_parity:AlwaysPrune"),
                      AlwaysPrune)
    with pytest.raises(ConfigError, match="BasePruner': calling it failed: TypeError"):
        load_pruner("optuna.pruners:BasePruner")
    with pytest.raises(ConfigError, match="is not an optuna pruner"):
        load_pruner("math:pi")
    with pytest.raises(ConfigError, match="--pruner must be module:name"):
        load_pruner("NopPruner")


def test_each_ended_trial_is_logged_as_study_optimize_logs_it(
    tmp_path: Path, devices: Path, caplog: pytest.LogCaptureFixture
) -> None:
    study = _study(tmp_path, devices, pruner=AlwaysPrune())
    with caplog.at_level("INFO", logger="optuna.hwaware"):
        optimize(study, reporting, n_trials=2)
        study.pruner = optuna.pruners.NopPruner()
        optimize(study, reporting, n_trials=2)
    lines = sorted(r.getMessage() for r in caplog.records if r.name == "optuna.hwaware")
    assert lines[:2] == ["Trial 0 pruned.", "Trial 1 pruned."]
    assert all(" finished with value: " in line and "Best is trial" in line
               for line in lines[2:]) and len(lines) == 4


def test_a_corrupt_lease_state_file_stops_optimize_before_any_trial(
    tmp_path: Path, devices: Path
) -> None:
    # It failed two trials per run with ~80 lines of executor tracebacks.
    study = _study(tmp_path, devices)
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "default.json").write_text('{"version": 1, "leases": [')
    with pytest.raises(ConfigError, match="is corrupt"):
        optimize(study, lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert study.trials == []
