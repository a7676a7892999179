"""``HardwareAwareTrials`` recovering from worker failures: out-of-memory re-placement
across device classes, ``max_retries``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hwaware_hyperopt import MISC_KEY, HardwareAwareTrials
from hyperopt import fmin, hp
from hyperopt.base import JOB_STATE_DONE, JOB_STATE_ERROR

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware import Device

from . import _objectives
from .conftest import cpus

Make = Callable[..., Any]


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
    docs = trials._dynamic_trials
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
