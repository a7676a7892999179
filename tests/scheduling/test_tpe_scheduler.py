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


@pytest.mark.parametrize("exact", [False, True])
def test_tpe_follows_the_losses_not_the_device(exact: bool) -> None:
    scheduler = load("scheduler", "tpe", seed=0, exact=exact)
    scheduler.setup(SUBS, CLASSES)
    history = History()
    chosen = []
    for i in range(60):  # 10 random start-up trials, then TPE
        cls = CLASSES[i % 2].name
        key = scheduler.choose(cls, history)
        chosen.append(key)
        history.record(key, cls, runtime_s=1.0, loss=LOSS[key] + 0.001 * i)
    assert Counter(chosen[10:])["good"] > 0.6 * 50
    # hardware-oblivious: same seed and history, another class: the same choices
    late = {}
    for info in CLASSES:
        twin = load("scheduler", "tpe", seed=5, exact=exact)
        twin.setup(SUBS, CLASSES)
        late[info.name] = [twin.choose(info.name, history) for _ in range(20)]
    assert late["gpu"] == late["cpu"]


def test_tpe_ignores_failures_until_ten_results() -> None:
    scheduler = load("scheduler", "tpe", seed=0)
    scheduler.setup(SUBS, CLASSES)
    history = History()
    for _ in range(30):
        history.record("worse", "cpu", runtime_s=1.0, state="fail")
    for _ in range(9):
        history.record("good", "cpu", runtime_s=1.0, loss=0.1)
    assert list(scheduler.probabilities(history).values()) == pytest.approx([1 / 3] * 3)
    history.record("good", "cpu", runtime_s=1.0, loss=0.1)
    # TPE proper from here (as Optuna's: every result so far is "good", so it looks elsewhere)
    assert scheduler.probabilities(history)["good"] < 0.01


def test_tpe_mirrors_failures_and_new_results_incrementally() -> None:
    scheduler = load("scheduler", "tpe", seed=1, exact=True)
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
