"""``HardwareAwareTrials``: parallel pinned evaluations that behave like ``Trials``."""

from __future__ import annotations

import _thread
import pickle
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hwaware_hyperopt import MISC_KEY, HardwareAwareTrials, suggest
from hyperopt import STATUS_OK, fmin, hp
from hyperopt.base import JOB_STATE_CANCEL, JOB_STATE_ERROR
from hyperopt.exceptions import AllTrialsFailed

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.executors import LocalExecutor
from hwaware_plugins.hardware import Device
from hwaware_plugins.hardware._pool import DevicePool

from . import _objectives
from .conftest import cpus

SPACE = {"x": hp.uniform("x", -1, 1), "sleep": 0.3}
Make = Callable[..., Any]


def _run(trials: HardwareAwareTrials, fn: Any = _objectives.square, **options: Any) -> Any:
    options.setdefault("max_evals", 6)
    return fmin(fn, options.pop("space", SPACE), trials=trials, show_progressbar=False,
                rstate=np.random.default_rng(0), **options)


def test_three_slots_overlap_but_never_more(make_executor: Make) -> None:
    trials = HardwareAwareTrials(executor=make_executor(cpus(3)))
    _run(trials, _objectives.timed, max_evals=9)
    spans = [(t["result"]["start"], t["result"]["end"]) for t in trials.trials]
    overlap = [sum(s <= a < e for s, e in spans) for a, _ in spans]
    assert max(overlap) == 3
    devices = {t["misc"][MISC_KEY]["device_id"] for t in trials.trials}
    assert devices == {"cpu:0", "cpu:1", "cpu:2"}
    for t in trials.trials:
        assert t["result"]["device"] == t["misc"][MISC_KEY]["device_id"]
        assert t["misc"][MISC_KEY]["device_class"] == "cpu"


def test_best_trial_losses_argmin_and_continuing_after_pickle(make_executor: Make) -> None:
    trials = HardwareAwareTrials(executor=make_executor())
    best = _run(trials, algo=suggest)
    assert len(trials.trials) == 6 and all(loss is not None for loss in trials.losses())
    assert best == trials.argmin and trials.best_trial["result"]["status"] == STATUS_OK
    restored = pickle.loads(pickle.dumps(trials))
    assert restored.executor == "local" and len(restored.trials) == 6
    restored.executor = make_executor()
    _run(restored, algo=suggest, max_evals=9)
    assert len(restored.trials) == 9


def test_objective_error_becomes_error_trial_with_traceback(make_executor: Make) -> None:
    trials = HardwareAwareTrials(executor=make_executor())
    _run(trials, _objectives.fails_above, max_evals=10, catch_eval_exceptions=True)
    errors = [t for t in trials._dynamic_trials if t["state"] == JOB_STATE_ERROR]
    assert errors and all(t["misc"]["vals"]["x"][0] > 0 for t in errors)
    assert "ValueError" in errors[0]["misc"]["error"][1]
    assert "fails_above" in errors[0]["result"]["traceback"]


def test_loss_threshold_and_early_stop(make_executor: Make) -> None:
    trials = HardwareAwareTrials(executor=make_executor())
    _run(trials, max_evals=200, loss_threshold=0.5)
    assert len(trials.trials) < 200 and min(trials.losses()) < 0.5
    calls: list[int] = []

    def stop_after_four(t: Any, *args: Any) -> tuple[bool, list[Any]]:
        calls.append(len(t.trials))
        return sum(r["status"] == STATUS_OK for r in t.results) >= 4, []

    trials = HardwareAwareTrials(executor=make_executor())
    _run(trials, max_evals=100, early_stop_fn=stop_after_four)
    # Called after every result, as in hyperopt's serial loop: the fourth stops it,
    # and evaluations still running then are cancelled, not added.
    assert calls == [1, 2, 3, 4] and len(trials.trials) == 4


def test_timeout_cancels_running_trials(make_executor: Make) -> None:
    trials = HardwareAwareTrials(executor=make_executor())
    started = time.monotonic()
    with pytest.raises(ConfigError, match="no evaluated trials"):
        _run(trials, _objectives.sleepy, max_evals=10, timeout=1)
    assert time.monotonic() - started < 10
    cancelled = [t for t in trials._dynamic_trials if t["state"] == JOB_STATE_CANCEL]
    assert len(cancelled) == 3 and "timeout" in cancelled[0]["misc"]["error"][1]


def test_timeout_per_trial_records_timeout_state(make_executor: Make) -> None:
    trials = HardwareAwareTrials(executor=make_executor(), timeout_per_trial=0.5)
    with pytest.raises(AllTrialsFailed, match=r"^all 3 evaluated trials failed; the first, "
                       r"trial \d: task ran past its 0\.5 s timeout"):
        _run(trials, _objectives.sleepy, max_evals=3)
    states = {t["misc"][MISC_KEY]["state"] for t in trials._dynamic_trials}
    assert states == {"timeout"}


TWO_SPEEDS = hp.choice("model", [
    {"kind": "slow", "sleep": 2.0, "x": hp.uniform("x_slow", -1, 1)},
    {"kind": "fast", "sleep": 0.0, "x": hp.uniform("x_fast", -1, 1)},
])


@pytest.mark.parametrize("algo", ["suggest", "rand"])
def test_timeout_per_trial_can_differ_per_subspace(make_executor: Make, algo: str) -> None:
    from hyperopt import rand

    trials = HardwareAwareTrials(executor=make_executor(cpus(2)),
                                 timeout_per_trial={"model=slow": 0.5, "*": 30})
    _run(trials, _objectives.sleeps, space=TWO_SPEEDS, max_evals=8,
         algo=suggest if algo == "suggest" else rand.suggest, catch_eval_exceptions=True)
    kinds = {0: "slow", 1: "fast"}
    for doc in trials._dynamic_trials:
        kind = kinds[int(doc["misc"]["vals"]["model"][0])]
        state = doc["misc"][MISC_KEY]["state"]
        assert state == ("timeout" if kind == "slow" else "complete"), (kind, state)
    assert {kinds[int(d["misc"]["vals"]["model"][0])] for d in trials._dynamic_trials} == {
        "slow", "fast"}


def test_invalid_settings_are_reported() -> None:
    with pytest.raises(ConfigError, match="parallelism"):
        HardwareAwareTrials(devices=cpus(1), parallelism=0).slots()
    with pytest.raises(ConfigError, match=r"timeout_per_trial\['model=mlp'\] must be None or"):
        HardwareAwareTrials(devices=cpus(1), timeout_per_trial={"model=mlp": -1}).slots()
    with pytest.raises(ConfigError, match="timeout_per_trial must be None, a number"):
        HardwareAwareTrials(devices=cpus(1), timeout_per_trial="1h").slots()
    with pytest.raises(ConfigError, match=r"executor 'dask' cannot be built from its name"):
        HardwareAwareTrials(devices=cpus(1), executor="dask").executor_object()
    with pytest.raises(ConfigError, match="pass_expr_memo_ctrl"):
        HardwareAwareTrials(devices=cpus(1)).fmin(_objectives.square, SPACE,
                                                  pass_expr_memo_ctrl=True)


@pytest.mark.parametrize("catch", [False, True])
def test_a_mig_declared_without_uuid_is_refused_before_any_trial(catch: bool) -> None:
    from hwaware_plugins.hardware import Device

    mig = Device(id="mig-0", kind="mig", name="1g.10gb", memory_total_mb=10_000)
    trials = HardwareAwareTrials(devices=[mig])
    with pytest.raises(ConfigError, match=r"'mig-0' \(mig\) has neither uuid nor index"):
        _run(trials, catch_eval_exceptions=catch)
    assert trials.trials == []


class _RefusingExecutor:
    """An executor whose set-up is wrong: every submit raises ConfigError."""

    def submit(self, fn: Any, *args: Any, **options: Any) -> Any:
        raise ConfigError("this executor cannot reach its scheduler at tcp://nowhere:8786")

    def interrupt(self) -> int:
        return 0


@pytest.mark.parametrize("catch", [False, True])
def test_an_executor_refusing_to_run_stops_fmin_with_its_own_error(catch: bool) -> None:
    trials = HardwareAwareTrials(executor=_RefusingExecutor(), devices=cpus(2))
    with pytest.raises(ConfigError, match="cannot reach its scheduler"):
        _run(trials, catch_eval_exceptions=catch)
    assert [d["state"] for d in trials.trials] == [JOB_STATE_ERROR]
    assert "cannot reach its scheduler" in trials.trials[0]["misc"]["error"][1]


def test_ctrl_c_kills_workers_and_marks_running_trials_cancelled(make_executor: Make) -> None:
    trials = HardwareAwareTrials(executor=make_executor(cpus(2)))
    timer = threading.Timer(1.0, _thread.interrupt_main)
    started = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        _run(trials, _objectives.sleepy, max_evals=5)
    timer.join()
    assert time.monotonic() - started < 10
    cancelled = [t for t in trials._dynamic_trials if t["state"] == JOB_STATE_CANCEL]
    assert len(cancelled) == 2 and "KeyboardInterrupt" in cancelled[0]["misc"]["error"][1]


def test_registered_components() -> None:
    from hwaware_plugins import load

    trials = load("trials", "hwaware", framework="hyperopt", devices=cpus(2), parallelism=2)
    assert isinstance(trials, HardwareAwareTrials) and trials.slots() == 2
    assert load("algo", "hwaware", framework="hyperopt") is suggest


def test_dropping_the_trials_object_ends_the_workers_it_started() -> None:
    # One HardwareAwareTrials per fmin in a loop (one per CV fold, say) must not pile up
    # idle workers until the interpreter exits.
    import gc

    import psutil

    from tests._procs import stray_children

    baseline = {p.pid for p in psutil.Process().children(recursive=True)}
    for _ in range(3):
        trials = HardwareAwareTrials(devices=cpus(2, name="dropped"))
        _run(trials, space={"x": hp.uniform("x", -1, 1), "sleep": 0.0}, max_evals=4)
        assert len(stray_children(baseline)) == 2  # its two workers, idle
        del trials
        gc.collect()
        assert stray_children(baseline) == []  # (waits for workers leaving, as exit would)


def test_a_gpu_class_held_by_other_users_gets_no_trials(tmp_path: Path) -> None:
    # The pool skips a GPU busy with foreign processes; the driver still sent trials to
    # its class, and each failed with NoSuitableDeviceError.
    busy = Device(id="gpu:0", kind="gpu", name="T4", uuid="GPU-busy", memory_total_mb=16000,
                  speed=4.0, foreign_processes=1)
    pool = DevicePool([busy, *cpus(2)], name="busy-gpu", state_dir=tmp_path)
    with LocalExecutor(pool, kill_grace_s=0.5) as executor:
        trials = HardwareAwareTrials(executor=executor)
        assert [c.name for c in trials.hwaware_device_classes] == ["cpu"]
        fmin(_objectives.square, {"x": hp.uniform("x", -1, 1)}, algo=suggest, max_evals=4,
             trials=trials, show_progressbar=False, rstate=np.random.default_rng(0))
    assert [t["result"]["status"] for t in trials.trials] == ["ok"] * 4
