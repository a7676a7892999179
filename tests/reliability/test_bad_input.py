"""Every row of the bad-input table in docs/reliability.md: one clear line, nothing lost.

Rows covered elsewhere are referenced in the table instead of repeated here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hwaware_plugins import load
from hwaware_plugins.chaos import chaos_devices
from hwaware_plugins.errors import (
    DeviceConfigError,
    SearchSpaceError,
    UnknownComponentError,
)
from hwaware_plugins.hardware import resolve_devices
from hwaware_plugins.space._distributions import Categorical, Float, Int

DEVICES = chaos_devices()[:2]


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, f"not one line: {text!r}"
    return text


# -- device files ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "declared-device file not found"),
        ("[[device]\nkind=", "malformed TOML"),
        ('[[device]]\nkind = "tpu"\nname = "x"\n', "unknown kind 'tpu'; use one of cpu, gpu, mig"),
        ('[[device]]\nkind = "gpu"\nname = "x"\n', "missing 'memory_gb' (device memory in GiB)"),
        ('[[device]]\nkind = "gpu"\nname = "x"\nmemory_gb = -3\n',
         "'memory_gb' must not be negative, got -3"),
        ('[[device]]\nkind = "gpu"\nname = "x"\nmemory_gb = 8\ncolour = "red"\n',
         "unknown key 'colour'; allowed keys:"),
        ("", "no [[device]] entries; add at least one"),
    ],
    ids=["missing", "malformed", "unknown-kind", "no-memory", "negative-memory", "unknown-key",
         "empty"],
)
def test_invalid_device_file(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "devices.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(DeviceConfigError) as info:
        resolve_devices(str(path))
    assert message in _one_line(info.value) and str(path) in str(info.value)


# -- names -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("scheduler",
         "unknown scheduler 'nope'; known: fcfs, hwaware, oracle, random, shadho, tpe"),
        ("executor", "unknown executor 'nope'; known: dask, local, thread"),
    ],
)
def test_unknown_component_name(kind: str, message: str) -> None:
    with pytest.raises(UnknownComponentError) as info:
        load(kind, "nope")
    assert message in _one_line(info.value)


@pytest.fixture()
def optuna_quiet() -> Iterator[Any]:
    optuna = pytest.importorskip("optuna")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    yield optuna
    optuna.logging.set_verbosity(verbosity)


def _sampler(tmp_path: Path, **options: Any) -> Any:
    from hwaware_optuna import HardwareAwareSampler

    return HardwareAwareSampler(devices=DEVICES, seed=0, state_dir=tmp_path, pool_name="bad",
                                **options)


def test_unknown_scheduler_in_the_optuna_sampler(tmp_path: Path, optuna_quiet: Any) -> None:
    study = optuna_quiet.create_study(sampler=_sampler(tmp_path, scheduler="nope"))
    with pytest.raises(UnknownComponentError,
                       match="unknown scheduler 'nope' for framework 'optuna'; known:"):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)


def test_unknown_scheduler_in_hyperopt_suggest() -> None:
    import numpy as np
    from hwaware_hyperopt import HardwareAwareTrials, suggest
    from hyperopt import fmin, hp

    trials = HardwareAwareTrials(devices=DEVICES, scheduler="nope")
    space = hp.choice("m", [{"a": hp.uniform("a", 0, 1)}, {"b": hp.uniform("b", 0, 1)}])
    with pytest.raises(UnknownComponentError,
                       match="unknown scheduler 'nope' for framework 'hyperopt'; known:"):
        fmin(lambda p: 1.0, space, algo=suggest, max_evals=1, trials=trials,
             rstate=np.random.default_rng(0), show_progressbar=False)
    trials.close()


# -- search spaces -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("distribution", "message"),
    [
        (Float(2.0, 1.0), "parameter 'p': low=2.0 is greater than high=1.0"),
        (Int(5, 1), "parameter 'p': low=5 is greater than high=1"),
        (Categorical([]), "parameter 'p': a categorical needs at least one choice"),
        (Float(0.0, 1.0, log=True), "parameter 'p': a log scale needs low > 0, got 0.0"),
    ],
)
def test_contradictory_core_distribution(distribution: Any, message: str) -> None:
    with pytest.raises(SearchSpaceError) as info:
        distribution.validate("p")
    assert _one_line(info.value) == message


def test_empty_hyperopt_choice_with_the_hwaware_algo() -> None:
    import numpy as np
    from hwaware_hyperopt import HardwareAwareTrials, suggest
    from hyperopt import fmin, hp

    trials = HardwareAwareTrials(devices=DEVICES)
    with pytest.raises(SearchSpaceError,
                       match="parameter 'x': a categorical needs at least one choice"):
        fmin(lambda p: 1.0, {"x": hp.choice("x", [])}, algo=suggest, max_evals=1,
             trials=trials, rstate=np.random.default_rng(0), show_progressbar=False)
    trials.close()


def test_hyperopt_low_above_high_is_refused_by_hyperopt() -> None:
    import numpy as np
    from hwaware_hyperopt import HardwareAwareTrials
    from hyperopt import fmin, hp

    trials = HardwareAwareTrials(devices=DEVICES)
    with pytest.raises(ValueError, match="low should be less than high: 2 is not smaller than 1"):
        fmin(lambda p: 1.0, {"x": hp.uniform("x", 2, 1)}, max_evals=1, trials=trials,
             rstate=np.random.default_rng(0), show_progressbar=False)
    trials.close()


@pytest.mark.parametrize(
    ("suggest", "message"),
    [
        (lambda t: t.suggest_float("x", 2, 1), "`low <= high` must hold"),
        (lambda t: t.suggest_categorical("x", []), "must contain one or more elements"),
    ],
    ids=["low-above-high", "empty-choice"],
)
def test_contradictory_optuna_space_fails_the_trial_and_keeps_the_rest(
    tmp_path: Path, optuna_quiet: Any, suggest: Callable[[Any], Any], message: str
) -> None:
    study = optuna_quiet.create_study(sampler=_sampler(tmp_path, scheduler="fcfs"))
    study.optimize(lambda t: t.suggest_float("y", 0, 1), n_trials=2)
    with pytest.raises(ValueError, match=message):
        study.optimize(suggest, n_trials=1)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "FAIL"]


# -- objective return values -----------------------------------------------------------------

BAD_VALUES = [
    (float("nan"), "nan"),
    (None, "None"),
    ("abc", "'abc'"),
    ((1.0, 2.0), "(1.0, 2.0)"),
]


@pytest.mark.parametrize(("value", "shown"), BAD_VALUES, ids=["nan", "none", "str", "tuple"])
def test_optuna_bad_return_value_fails_that_trial_with_a_warning(
    tmp_path: Path, optuna_quiet: Any, value: Any, shown: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    optuna_quiet.logging.set_verbosity(optuna_quiet.logging.WARNING)
    optuna_quiet.logging.enable_propagation()
    try:
        study = optuna_quiet.create_study(sampler=_sampler(tmp_path, scheduler="fcfs"))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        with caplog.at_level(logging.WARNING, logger="optuna"):
            study.optimize(lambda t: (t.suggest_float("x", 0, 1), value)[1], n_trials=1)
    finally:
        optuna_quiet.logging.disable_propagation()
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    messages = [r.getMessage() for r in caplog.records]
    assert f"Trial 2 failed with value {shown}." in messages


def _hyperopt(objective: Any, max_evals: int, trials: Any = None, **options: Any) -> Any:
    import numpy as np
    from hwaware_hyperopt import HardwareAwareTrials
    from hyperopt import fmin, hp

    trials = trials or HardwareAwareTrials(devices=DEVICES, parallelism=1)
    try:
        fmin(objective, {"x": hp.uniform("x", 0, 1)}, max_evals=max_evals, trials=trials,
             rstate=np.random.default_rng(0), show_progressbar=False, **options)
    finally:
        trials.close()
    return trials


def _returns(value: Any) -> Callable[[Any], Any]:
    return lambda point: value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "InvalidResult: the objective returned a NoneType; return a float or a dict"),
        ("abc", "InvalidResult: the objective returned a str; return a float or a dict"),
        ((1.0, 2.0), "InvalidResult: the objective returned a tuple; return a float or a dict"),
    ],
    ids=["none", "str", "tuple"],
)
def test_hyperopt_bad_return_value_is_an_error_trial_and_done_trials_stay(
    value: Any, message: str
) -> None:
    from hyperopt import base

    trials = _hyperopt(_returns(0.5), 2)
    _hyperopt(_returns(value), 3, trials, catch_eval_exceptions=True)
    states = [d["state"] for d in trials._dynamic_trials]
    assert states == [base.JOB_STATE_DONE, base.JOB_STATE_DONE, base.JOB_STATE_ERROR]
    assert [d["result"].get("loss") for d in trials._dynamic_trials[:2]] == [0.5, 0.5]
    kind, text = trials._dynamic_trials[2]["misc"]["error"]
    assert kind == "InvalidResult" and message.removeprefix("InvalidResult: ") in text
    assert "\n" not in text


@pytest.mark.parametrize("value", [None, "abc", (1.0, 2.0), float("nan")],
                         ids=["none", "str", "tuple", "nan"])
def test_hyperopt_bad_return_value_stops_fmin_without_catch(value: Any) -> None:
    from hwaware_hyperopt import TrialFailedError
    from hyperopt import base

    trials = _hyperopt(_returns(0.5), 1)
    with pytest.raises(TrialFailedError, match="trial 1 failed: InvalidResult: the objective"):
        _hyperopt(_returns(value), 2, trials)
    states = [d["state"] for d in trials._dynamic_trials]
    assert states == [base.JOB_STATE_DONE, base.JOB_STATE_ERROR]


@pytest.mark.parametrize(
    ("value", "shown"),
    [(float("nan"), "nan"), (float("-inf"), "-inf"), ({"status": "ok", "loss": "nan"}, "nan")],
    ids=["nan", "inf", "dict-nan"],
)
def test_hyperopt_nan_loss_is_a_failed_trial_with_a_reason(value: Any, shown: str) -> None:
    from hyperopt import base

    trials = _hyperopt(_returns(0.5), 1)
    _hyperopt(_returns(value), 2, trials, catch_eval_exceptions=True)
    done, doc = trials._dynamic_trials
    assert done["state"] == base.JOB_STATE_DONE and done["result"]["loss"] == 0.5
    assert doc["state"] == base.JOB_STATE_ERROR
    kind, text = doc["misc"]["error"]
    assert kind == "InvalidResult" and "\n" not in text
    assert text.startswith(f"the objective returned {shown} as the loss; return a finite")
    assert trials.best_trial["tid"] == 0  # the search goes on from the done trial


# -- unpicklable objectives ----------------------------------------------------------------

def _unpicklable() -> Callable[[Any], float]:
    lock = threading.Lock()
    return lambda point: (lock, 1.0)[1]


def test_hyperopt_unpicklable_objective_is_named() -> None:
    from hwaware_hyperopt import TrialFailedError

    with pytest.raises(TrialFailedError) as info:
        _hyperopt(_unpicklable(), 1)
    text = _one_line(info.value)
    assert "TaskSerializationError" in text and "is not picklable" in text
    assert "cannot pickle '_thread.lock' object" in text

