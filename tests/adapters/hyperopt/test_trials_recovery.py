"""``HardwareAwareTrials`` recovering from worker and coordinator failures: out-of-memory
re-placement across device classes, ``max_retries``, resuming after a dead coordinator,
and a save file that is never left half-written."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hwaware_hyperopt import MISC_KEY, HardwareAwareTrials
from hyperopt import fmin, hp
from hyperopt.base import JOB_STATE_DONE, JOB_STATE_ERROR, JOB_STATE_RUNNING
from hyperopt.pyll import scope

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware import Device

from . import _objectives
from .conftest import cpus

Make = Callable[..., Any]
ROOT = Path(__file__).resolve().parents[3]


def _gpu(name: str, speed: float) -> Device:
    """A declared GPU whose class is ``name``; nothing touches CUDA."""
    memory = _objectives.GPU_MEMORY_MB[name]
    return Device(id=f"{name}:0", kind="gpu", name=name, uuid=f"GPU-test-{name}",
                  memory_total_mb=memory, memory_free_mb=memory, speed=speed, index=0)


# The small GPU is the faster class, so every trial is first placed there.
GPUS = [_gpu("small", 2.0), _gpu("big", 1.0)]


def _run(trials: HardwareAwareTrials, fn: Any, max_evals: int, **options: Any) -> None:
    space = options.pop("space", {"x": hp.uniform("x", -1, 1)})
    fmin(fn, space, trials=trials, max_evals=max_evals, show_progressbar=False,
         rstate=np.random.default_rng(0), catch_eval_exceptions=True, return_argmin=False,
         **options)


def test_an_oom_trial_is_re_placed_on_a_bigger_gpu_class(
    make_executor: Make, caplog: pytest.LogCaptureFixture
) -> None:
    trials = HardwareAwareTrials(executor=make_executor(GPUS), parallelism=1)
    space = {"x": hp.uniform("x", -1, 1), "need_mb": 6000}
    with caplog.at_level(logging.WARNING, "hwaware_plugins.executors"):
        _run(trials, _objectives.needs_memory, 2, space=space)
    for doc in trials._dynamic_trials:
        info = doc["misc"][MISC_KEY]
        assert doc["state"] == JOB_STATE_DONE and info["device_class"] == "big"
        (first, why_first, reason), (second, why_second, _) = info["attempts"]
        assert (first, why_first, second, why_second) == ("small:0", "oom", "big:0", "complete")
        assert "CUDA out of memory" in reason and "re-placing with 6000 MiB" in reason
        assert info["memory_mb"] == 6000 and info["retries"] == 0
    assert "hyperopt-trial-0 ran out of memory on small:0; re-placing with 6000 MiB" in caplog.text


def test_oom_re_placement_is_bounded_and_says_when_no_device_fits(make_executor: Make) -> None:
    trials = HardwareAwareTrials(executor=make_executor(GPUS), parallelism=1)
    _run(trials, _objectives.needs_memory, 1, space={"x": hp.uniform("x", -1, 1),
                                                     "need_mb": 10**6})
    (doc,) = trials._dynamic_trials
    info = doc["misc"][MISC_KEY]
    assert doc["state"] == JOB_STATE_ERROR and info["state"] == "oom"
    assert [a[0] for a in info["attempts"]] == ["small:0", "big:0", None]
    assert "re-placement impossible" in info["attempts"][-1][2]


@pytest.mark.parametrize("max_retries", [0, 1])
def test_max_retries_runs_a_crashed_trial_again_on_a_fresh_placement(
    make_executor: Make, max_retries: int
) -> None:
    trials = HardwareAwareTrials(executor=make_executor(cpus(2)), max_retries=max_retries)
    _run(trials, _objectives.crash_first, 3)
    docs = _by_tid(trials)
    assert [d["tid"] for d in docs] == [0, 1, 2]  # a retry keeps its trial id
    for doc in docs:
        info = doc["misc"][MISC_KEY]
        states = [a[1] for a in info["attempts"]]
        assert info["retries"] == max_retries
        if max_retries:
            assert doc["state"] == JOB_STATE_DONE and states == ["crash", "complete"]
        else:
            assert doc["state"] == JOB_STATE_ERROR and states == ["crash"]
            assert doc["misc"]["error"][0] == "crash"


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_invalid_max_retries_is_named_when_fmin_starts(bad: Any) -> None:
    trials = HardwareAwareTrials(devices=cpus(1), max_retries=bad)
    with pytest.raises(ConfigError, match=f"^max_retries must be an int >= 0, got {bad!r}$"):
        _run(trials, _objectives.square, 1)
    assert trials._dynamic_trials == []


def _by_tid(trials: HardwareAwareTrials) -> list[dict[str, Any]]:
    """The trial documents by trial id (``_dynamic_trials`` lists results in arrival order)."""
    return sorted(trials._dynamic_trials, key=lambda doc: int(doc["tid"]))


def _left_running(make_executor: Make) -> tuple[HardwareAwareTrials, float]:
    """Two trials, the second as a pickle holds it when its coordinator died mid-trial."""
    trials = HardwareAwareTrials(executor=make_executor())
    _run(trials, _objectives.square, 2)
    doc = _by_tid(trials)[1]
    doc["state"], doc["result"] = JOB_STATE_RUNNING, {"status": "new"}
    del doc["misc"][MISC_KEY]["state"], doc["misc"][MISC_KEY]["attempts"]
    restored = pickle.loads(pickle.dumps(trials))
    restored.executor = make_executor()
    return restored, float(doc["misc"]["vals"]["x"][0])


def test_trials_a_dead_coordinator_left_running_fail_on_resume(
    make_executor: Make, caplog: pytest.LogCaptureFixture
) -> None:
    trials, _ = _left_running(make_executor)
    loss = _by_tid(trials)[0]["result"]["loss"]
    with caplog.at_level(logging.WARNING, "hwaware_hyperopt"):
        _run(trials, _objectives.square, 4)
    docs = _by_tid(trials)
    assert docs[0]["state"] == JOB_STATE_DONE and docs[0]["result"]["loss"] == loss
    assert docs[1]["state"] == JOB_STATE_ERROR
    kind, reason = docs[1]["misc"]["error"]
    assert kind == "CoordinatorDied" and reason.startswith("coordinator died: trial 1 was")
    assert "left running by a coordinator that died" in caplog.text
    # Without retries it is not run again: the search goes on with new points.
    assert [d["state"] for d in docs[2:]] == [JOB_STATE_DONE] * 3
    assert all(MISC_KEY not in d["misc"] or "retry_of" not in d["misc"][MISC_KEY]
               for d in docs[2:])


def test_with_max_retries_they_run_again_at_the_same_point(make_executor: Make) -> None:
    trials, x = _left_running(make_executor)
    trials.max_retries = 1
    _run(trials, _objectives.square, 3)
    old, rerun = _by_tid(trials)[1:3]
    assert old["state"] == JOB_STATE_ERROR and old["misc"]["error"][0] == "CoordinatorDied"
    assert rerun["state"] == JOB_STATE_DONE and rerun["misc"]["vals"]["x"] == [x]
    assert rerun["misc"]["idxs"]["x"] == [rerun["tid"]] and rerun["result"]["loss"] == x**2
    assert rerun["misc"][MISC_KEY]["retry_of"] == 1 and rerun["misc"][MISC_KEY]["retries"] == 1
    assert len(trials.trials) == 3  # the failed one does not count towards max_evals


def test_the_save_file_is_complete_after_every_run(make_executor: Make, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    saved = tmp_path / "run" / "trials.pkl"
    trials = HardwareAwareTrials(executor=make_executor())
    _run(trials, _objectives.square, 4, trials_save_file=str(saved))
    with open(saved, "rb") as handle:
        assert len(pickle.load(handle).trials) == 4
    assert os.listdir(tmp_path / "run") == ["trials.pkl"]  # no temporary file left


_KILLED_WHILE_SAVING = """
import os, signal, sys
from hwaware_hyperopt._resume import save_trials
path = sys.argv[1]
save_trials({"trials": 1}, path)
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # dies with the new data half-way
save_trials({"trials": 2, "padding": "x" * 10**6}, path)
"""


def test_a_coordinator_killed_while_saving_leaves_the_previous_pickle(tmp_path: Path) -> None:
    saved = tmp_path / "trials.pkl"
    done = subprocess.run([sys.executable, "-c", _KILLED_WHILE_SAVING, str(saved)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == -9, done.stderr
    with open(saved, "rb") as handle:
        assert pickle.load(handle) == {"trials": 1}


def test_results_holding_lambdas_are_saved_as_hyperopt_saves_them(
    make_executor: Make, tmp_path: Path
) -> None:
    # hyperopt pickles its save file with cloudpickle; a plain pickle failed the whole run.
    saved = tmp_path / "trials.pkl"
    trials = HardwareAwareTrials(executor=make_executor())
    _run(trials, _objectives.returns_a_predictor, 3, trials_save_file=str(saved))
    with open(saved, "rb") as handle:
        loaded = pickle.load(handle)
    result = loaded.trials[0]["result"]
    assert result["predict"](2.0) == pytest.approx(2.0 * loaded.trials[0]["misc"]["vals"]["x"][0])


def test_fmin_loading_the_save_file_itself_is_told_to_pass_the_trials(
    make_executor: Make, tmp_path: Path
) -> None:
    # fmin(trials_save_file=P) without trials= loads the pickle and runs hyperopt's serial
    # loop in this process: no device, and a dead run's RUNNING trials stayed RUNNING.
    saved = tmp_path / "trials.pkl"
    _run(HardwareAwareTrials(executor=make_executor()), _objectives.square, 2,
         trials_save_file=str(saved))
    before = saved.read_bytes()
    with pytest.raises(ConfigError, match=r"pass it yourself, e.g. fmin\(\.\.\., trials="):
        fmin(_objectives.square, {"x": hp.uniform("x", -1, 1)}, max_evals=4,
             trials_save_file=str(saved), show_progressbar=False)
    assert saved.read_bytes() == before


@scope.define
def hwaware_test_picky(x: float) -> float:
    """A space's own function that raises (a pyll scope function)."""
    raise ValueError(f"picky: {x:.3f}")


def test_an_exception_of_the_space_itself_keeps_its_type(make_executor: Make) -> None:
    # A scope function of the space raising came back as TrialFailedError, which an
    # `except ValueError` around fmin (as with plain Trials) did not catch.
    trials = HardwareAwareTrials(executor=make_executor())
    space = {"x": scope.hwaware_test_picky(hp.uniform("x", -1, 1))}
    with pytest.raises(ValueError, match="picky"):
        fmin(_objectives.square, space, trials=trials,
             max_evals=2, show_progressbar=False, rstate=np.random.default_rng(0))


def test_a_timeout_key_that_names_no_subspace_is_refused(make_executor: Make) -> None:
    space = hp.choice("model", [{"x": hp.uniform("x", -1, 1)}, {"x": hp.uniform("y", -1, 1)}])
    trials = HardwareAwareTrials(executor=make_executor(), timeout_per_trial={"mlp": 1})
    with pytest.raises(ConfigError, match=r"timeout_per_trial names 'mlp', not a subspace"):
        _run(trials, _objectives.square, 2, space=space)
    assert trials.trials == []


def annotated_square(x: float) -> float:
    """An objective whose space is its annotations (``space="annotated"``)."""
    return float(x) ** 2


# Set by hand: this module's annotations are strings (``from __future__ import annotations``),
# and hyperopt reads every annotation, the return's too, as a parameter's space.
annotated_square.__annotations__ = {"x": hp.uniform("x", -1, 1)}


def test_fmin_called_on_the_trials_directly_takes_an_annotated_space(
    make_executor: Make,
) -> None:
    # Trials().fmin(fn, "annotated") works through hyperopt; ours raised IndexError.
    trials = HardwareAwareTrials(executor=make_executor())
    best = trials.fmin(annotated_square, "annotated", max_evals=3, show_progressbar=False,
                       rstate=np.random.default_rng(0))
    assert set(best) == {"x"} and len(trials.trials) == 3
