"""The ``tpe`` baseline: Optuna's TPESampler picks the subspace, hardware-oblivious."""

from __future__ import annotations

from collections import Counter

import pytest

from hwaware_plugins import load
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.scheduling import DeviceClassInfo, History, SubspaceInfo

pytest.importorskip("optuna")

SUBS = [SubspaceInfo("good"), SubspaceInfo("bad"), SubspaceInfo("worse")]
CLASSES = [DeviceClassInfo("gpu", speed=4.0, slots=2), DeviceClassInfo("cpu", slots=6)]
LOSS = {"good": 0.1, "bad": 0.5, "worse": 0.9}


def test_tpe_follows_the_losses_not_the_device() -> None:
    scheduler = load("scheduler", "tpe", seed=0)
    scheduler.setup(SUBS, CLASSES)
    history = History()
    for i in range(60):  # 10 random start-up trials, then TPE
        cls = CLASSES[i % 2].name
        key = scheduler.choose(cls, history)
        history.record(key, cls, runtime_s=1.0, loss=LOSS[key] + 0.001 * i)
    late = {
        cls.name: Counter(scheduler.choose(cls.name, history) for _ in range(60)) for cls in CLASSES
    }
    for counts in late.values():
        assert counts["good"] > 0.6 * 60
    # hardware-oblivious: both classes see the same distribution of choices
    assert abs(late["gpu"]["good"] - late["cpu"]["good"]) < 20


def test_tpe_mirrors_failures_and_new_results_incrementally() -> None:
    scheduler = load("scheduler", "tpe", seed=1)
    scheduler.setup(SUBS, CLASSES)
    history = History()
    history.record("bad", "cpu", runtime_s=1.0, state="fail")
    scheduler.choose("cpu", history)
    history.record("good", "cpu", runtime_s=1.0, loss=0.1)
    scheduler.choose("cpu", history)
    study = scheduler._study
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    assert study.trials[1].params == {"subspace": "good"} and study.trials[1].value == 0.1
    with pytest.raises(ConfigError, match="unknown device class 'tpu'"):
        scheduler.choose("tpu", history)
    with pytest.raises(ConfigError, match="call setup"):
        load("scheduler", "tpe", seed=0).choose("cpu", history)
