"""``HardwareAwareTrials`` keeps the contracts of hyperopt's serial ``fmin`` loop.

What hyperopt's own algorithms and helpers read while evaluations run in
parallel, ``catch_eval_exceptions=False``, queued points, ``early_stop_fn``
after every result, ``AllTrialsFailed`` and hyperopt's progress bar.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hwaware_hyperopt import MISC_KEY, HardwareAwareTrials, RemoteTraceback, TrialFailedError
from hyperopt import STATUS_OK, fmin, hp
from hyperopt.base import JOB_STATE_CANCEL, JOB_STATE_DONE, JOB_STATE_ERROR
from hyperopt.early_stop import no_progress_loss
from hyperopt.exceptions import AllTrialsFailed
from hyperopt.fmin import generate_trials_to_calculate

from . import _objectives
from .conftest import cpus

SPACE = {"x": hp.uniform("x", -1, 1), "sleep": hp.uniform("sleep", 0.0, 0.2)}
Make = Callable[..., Any]


def _run(trials: HardwareAwareTrials, fn: Any = _objectives.sleeps, **options: Any) -> Any:
    options.setdefault("show_progressbar", False)
    return fmin(fn, options.pop("space", SPACE), trials=trials,
                rstate=np.random.default_rng(3), **options)


def _queued(trials: HardwareAwareTrials, points: list[dict[str, float]]) -> HardwareAwareTrials:
    trials.insert_trial_docs(generate_trials_to_calculate(points)._dynamic_trials)
    trials.refresh()
    return trials


@pytest.mark.parametrize("algo", ["tpe", "atpe", "anneal", "rand"])
def test_hyperopt_algorithms_and_no_progress_loss_read_only_finished_trials(
    make_executor: Make, algo: str
) -> None:
    seen: list[list[int]] = []
    stop = no_progress_loss(5)

    def early_stop(trials: Any, *args: Any) -> Any:
        seen.append([t["state"] for t in trials.trials])
        return stop(trials, *args)

    trials = HardwareAwareTrials(executor=make_executor(cpus(3)))
    _run(trials, algo=importlib.import_module(f"hyperopt.{algo}").suggest, max_evals=14,
         early_stop_fn=early_stop)
    # Three evaluations ran at once, yet no running trial was ever listed.
    assert seen and all(states == [JOB_STATE_DONE] * len(states) for states in seen)
    assert [len(states) for states in seen] == list(range(1, len(seen) + 1))
    assert all(t["result"]["status"] == STATUS_OK for t in trials.trials)


def test_results_are_listed_in_the_order_they_arrived(make_executor: Make) -> None:
    trials = _queued(HardwareAwareTrials(executor=make_executor(cpus(3))), [
        {"x": 0.1, "sleep": 1.5}, {"x": 0.2, "sleep": 0.0}, {"x": 0.3, "sleep": 0.8}])
    order: list[list[int]] = []

    def record(t: Any, *args: Any) -> tuple[bool, list[Any]]:
        order.append([doc["tid"] for doc in t.trials])
        return False, []

    _run(trials, max_evals=3, early_stop_fn=record)
    # no_progress_loss reads the last listed trial as the newest result.
    assert order == [[1], [1, 2], [1, 2, 0]]


def test_queued_points_are_evaluated_and_count_toward_max_evals(make_executor: Make) -> None:
    trials = _queued(HardwareAwareTrials(executor=make_executor()), [
        {"x": 0.5, "sleep": 0.0}, {"x": -0.25, "sleep": 0.0}])
    _run(trials, max_evals=4)
    assert [d["state"] for d in trials._dynamic_trials] == [JOB_STATE_DONE] * 4
    by_tid = {t["tid"]: t for t in trials.trials}
    assert by_tid[0]["result"]["loss"] == 0.25 and by_tid[1]["result"]["loss"] == 0.0625


def test_early_stop_is_asked_after_every_result(make_executor: Make) -> None:
    calls: list[int] = []

    def stop_after_five(t: Any, *args: Any) -> tuple[bool, list[Any]]:
        calls.append(len(t.trials))
        return len(t.trials) >= 5, []

    trials = HardwareAwareTrials(executor=make_executor(cpus(3)))
    _run(trials, max_evals=50, early_stop_fn=stop_after_five)
    assert calls == [1, 2, 3, 4, 5] and len(trials.trials) == 5
    # What still ran is cancelled; a result that came after the stop is kept aside.
    late = [d for d in trials._dynamic_trials if d["state"] == JOB_STATE_CANCEL]
    assert len(trials._dynamic_trials) == 5 + len(late)
    for doc in late:
        if "unseen_result" in doc["misc"][MISC_KEY]:
            assert doc["misc"][MISC_KEY]["unseen_result"]["status"] == STATUS_OK


def test_without_catch_fmin_raises_the_objectives_own_exception(make_executor: Make) -> None:
    trials = HardwareAwareTrials(executor=make_executor())
    with pytest.raises(_objectives.ObjectiveError, match=r"^x=\S+ is out of range$") as info:
        _run(trials, _objectives.raises_own, max_evals=6)
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in raises_own" in str(cause) and "ObjectiveError: x=" in str(cause)
    failed = [d for d in trials._dynamic_trials if d["state"] == JOB_STATE_ERROR]
    assert failed and failed[0]["misc"]["error"][0] == "ObjectiveError"
    assert failed[0]["misc"][MISC_KEY]["state"] == "fail"
    assert failed[0]["misc"][MISC_KEY]["attempts"][-1][1] == "fail"
    assert len(trials.trials) == 0


def test_an_exception_that_cannot_travel_is_named_in_trial_failed_error(
    make_executor: Make
) -> None:
    trials = HardwareAwareTrials(executor=make_executor())
    with pytest.raises(TrialFailedError, match=r"failed: UnpicklableError: holds a lock"):
        _run(trials, _objectives.raises_unpicklable, max_evals=3)


def test_an_objective_that_cannot_reach_a_worker_gets_no_catch_advice(
    make_executor: Make
) -> None:
    import threading

    lock = threading.Lock()

    def holds_a_lock(point: dict[str, Any]) -> float:
        with lock:
            return 0.0

    trials = HardwareAwareTrials(executor=make_executor())
    with pytest.raises(TrialFailedError, match=r"TaskSerializationError: .* not picklable") as info:
        _run(trials, holds_a_lock, max_evals=3)
    assert "catch_eval_exceptions" not in str(info.value)
    with pytest.raises(TrialFailedError, match=r"catch_eval_exceptions=True to record"):
        _run(HardwareAwareTrials(executor=make_executor()), _objectives.raises_unpicklable,
             max_evals=3)


def test_every_trial_failed_raises_all_trials_failed_with_the_first_error(
    make_executor: Make
) -> None:
    trials = HardwareAwareTrials(executor=make_executor())
    with pytest.raises(AllTrialsFailed, match=r"^all 4 evaluated trials failed; the first, "
                       r"trial \d: ObjectiveError: x=\S+ is out of range$"):
        _run(trials, _objectives.raises_own, max_evals=4, catch_eval_exceptions=True)


def test_show_progressbar_draws_hyperopts_bar(
    make_executor: Make, capsys: pytest.CaptureFixture[str]
) -> None:
    trials = HardwareAwareTrials(executor=make_executor())
    _run(trials, _objectives.square, space={"x": hp.uniform("x", -1, 1)}, max_evals=4,
         show_progressbar=True)
    out = capsys.readouterr().out
    assert "4/4" in out and "trial/s" in out and "best loss: " in out
    _run(trials, _objectives.square, space={"x": hp.uniform("x", -1, 1)}, max_evals=5,
         show_progressbar=True, verbose=False)
    assert "5/5" not in capsys.readouterr().out  # as fmin: verbose=False shows no bar
