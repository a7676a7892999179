"""``hwaware_optuna.optimize``: per-slot pinned worker processes on declared devices."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import optuna
import pytest
from hwaware_optuna import HardwareAwareSampler
from hwaware_optuna._optimize import optimize
from optuna.trial import TrialState

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware import resolve_devices, this_host
from hwaware_plugins.hardware._pool import DevicePool
from tests._procs import stray_children

GPU_UUID = "GPU-11111111-2222-3333-4444-555555555555"


def _devices(folder: Path, *, cpu_slots: int, gpu: bool) -> Path:
    # CPU slots of a made-up host: opt in to leasing them here (a one-machine simulation).
    # A GPU is this host's: a simulated GPU of another host is pinned to none.
    text = 'remote_devices = "simulate"\n'
    host = "" if gpu else 'host = "node-t"\n'
    text += f'[[device]]\nkind = "cpu"\n{host}cores = 1\nslots = {cpu_slots}\n'
    if gpu:
        text += (
            '\n[[device]]\nkind = "gpu"\nname = "FakeGPU"\nmemory_gb = 8\n'
            f'uuids = ["{GPU_UUID}"]\n'
        )
    path = folder / "devices.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _study(folder: Path) -> optuna.Study:
    sampler = HardwareAwareSampler(seed=0, state_dir=folder / "pool")
    return optuna.create_study(sampler=sampler)


def _no_children() -> None:
    deadline = time.monotonic() + 5
    while stray_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stray_children() == []


def pinned(trial: optuna.trial.Trial) -> float:
    """Records what the worker process saw; slow enough that every worker gets trials."""
    x = trial.suggest_float("x", -1, 1)
    trial.set_user_attr("cuda_visible", os.environ.get("CUDA_VISIBLE_DEVICES"))
    trial.set_user_attr("pid", os.getpid())
    time.sleep(0.3)
    return x * x


def crash_once(trial: optuna.trial.Trial) -> float:
    """Kills its worker process on trial 1 (not on its retry)."""
    x = trial.suggest_float("x", -1, 1)
    if trial.number == 1 and "hwaware:retry" not in trial.user_attrs:
        os._exit(3)
    return x * x


def oom_once(trial: optuna.trial.Trial) -> float:
    """Runs out of (simulated) device memory on trial 1, not on its retry."""
    x = trial.suggest_float("x", -1, 1)
    if trial.number == 1 and "hwaware:retry" not in trial.user_attrs:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    return x * x


def hang_first(trial: optuna.trial.Trial) -> float:
    """Trial 0 hangs far past any timeout."""
    if trial.number == 0:
        time.sleep(60)
    return trial.suggest_float("x", -1, 1)


def test_an_in_memory_study_does_not_log_a_new_study(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The temporary journal copy is not a study the user made: Optuna's "A new study
    # created in Journal" line would say otherwise.
    study = _study(tmp_path)
    optuna.logging.enable_propagation()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        with caplog.at_level(logging.INFO):
            optimize(study, pinned, n_trials=1, devices=_devices(tmp_path, cpu_slots=1, gpu=False))
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        optuna.logging.disable_propagation()
    assert any("temporary journal file" in m for m in caplog.messages)
    assert not [m for m in caplog.messages if "A new study created" in m]


def test_three_slots_run_in_three_pinned_processes_with_an_exact_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    study = _study(tmp_path)
    with caplog.at_level(logging.INFO, logger="hwaware_optuna"):
        result = optimize(study, pinned, n_trials=7,
                          devices=_devices(tmp_path, cpu_slots=2, gpu=True))
    # The in-memory study ran in a temporary journal file, removed at the end (issue 14).
    assert list(tmp_path.glob("*hwaware-journal*")) == []
    [message] = [m for m in caplog.messages if "temporary journal file" in m]
    assert not Path(message.split("temporary journal file ")[1].split(" ")[0]).exists()
    assert result is study
    for trials in (study.trials, result.trials):
        assert len(trials) == 7
        assert {t.state for t in trials} == {TrialState.COMPLETE}
    by_pid: dict[int, set[str]] = {}
    slots: set[str] = set()
    for trial in study.trials:
        attrs = trial.user_attrs
        by_pid.setdefault(attrs["pid"], set()).add(attrs["hwaware:device_id"])
        slots.add(attrs["hwaware:slot_id"])
        expected = GPU_UUID if attrs["hwaware:device_kind"] == "gpu" else ""
        assert attrs["cuda_visible"] == expected
        assert attrs["hwaware:node"] == this_host()
    # Every slot ran trials, and a worker process never moves to another device (it is
    # bound to its pinning; the two CPU slots of one core share theirs, so one process
    # may serve both; how many trials one process runs is the executor's business).
    assert len(slots) == 3
    assert all(len(devices) == 1 for devices in by_pid.values())
    _no_children()


def test_slots_held_elsewhere_at_the_start_are_used_once_they_free_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The old supervisor sized its workers from the slots free at its start: two slots held
    # by another process for a second made every trial run on the third.
    monkeypatch.chdir(tmp_path)
    devices = _devices(tmp_path, cpu_slots=3, gpu=False)
    other = DevicePool(resolve_devices(devices), state_dir=tmp_path / "pool")
    held = [other.acquire(label="elsewhere"), other.acquire(label="elsewhere")]
    release = threading.Timer(1.0, lambda: [lease.release() for lease in held])
    release.start()
    study = _study(tmp_path)
    try:
        optimize(study, pinned, n_trials=9, devices=devices)
    finally:
        release.join()
    assert {t.state for t in study.trials} == {TrialState.COMPLETE}
    assert len({t.user_attrs["hwaware:slot_id"] for t in study.trials}) >= 2
    _no_children()


def test_a_crash_fails_only_its_trial_and_is_retried_on_a_fresh_placement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    study = _study(tmp_path)
    optimize(study, crash_once, n_trials=4, max_retries=1,
             devices=_devices(tmp_path, cpu_slots=2, gpu=False))
    crashed = study.trials[1]
    assert crashed.state == TrialState.FAIL
    assert crashed.user_attrs["hwaware:fail_reason"].startswith("crash: ")
    retries = [t for t in study.trials if t.user_attrs.get("hwaware:retry") == 1]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.state == TrialState.COMPLETE
    assert retry.params == crashed.params
    assert retry.user_attrs["hwaware:trial"] == retry.number  # placed again, not copied
    assert "hwaware:fail_reason" not in retry.user_attrs
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4  # three new trials and the retry; n_trials counts new ones
    _no_children()


def test_an_out_of_memory_trial_is_retried_on_a_fresh_placement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    study = _study(tmp_path)
    optimize(study, oom_once, n_trials=3, max_retries=1,
             devices=_devices(tmp_path, cpu_slots=1, gpu=False))
    failed = study.trials[1]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["hwaware:fail_reason"].startswith("oom: ")
    [retry] = [t for t in study.trials if t.user_attrs.get("hwaware:retry") == 1]
    assert retry.state == TrialState.COMPLETE
    assert retry.params == failed.params
    _no_children()


def test_trial_timeout_kills_the_worker_and_fails_the_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    study = _study(tmp_path)
    started = time.monotonic()
    optimize(study, hang_first, n_trials=3, trial_timeout=6.0,
             devices=_devices(tmp_path, cpu_slots=1, gpu=False))
    assert time.monotonic() - started < 45
    first = study.trials[0]
    assert first.state == TrialState.FAIL
    assert first.user_attrs["hwaware:fail_reason"].startswith("timeout: ")
    assert [t.state for t in study.trials[1:]] == [TrialState.COMPLETE] * 2
    _no_children()


def test_an_unpicklable_objective_is_refused_in_one_line(tmp_path: Path) -> None:
    lock = threading.Lock()

    def objective(trial: optuna.trial.Trial) -> float:
        with lock:
            return 0.0

    with pytest.raises(ConfigError, match="cannot be sent to worker processes") as info:
        optimize(_study(tmp_path), objective, n_trials=1,
                 devices=_devices(tmp_path, cpu_slots=1, gpu=False))
    assert "\n" not in str(info.value)
    assert stray_children() == []


def test_a_mig_declared_without_uuid_is_refused_before_any_trial(tmp_path: Path) -> None:
    devices = tmp_path / "mig.toml"
    devices.write_text('[[device]]\nkind = "mig"\nname = "1g.10gb"\nmemory_gb = 10\n',
                       encoding="utf-8")
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "journal.log")))
    study = optuna.create_study(storage=storage,
                                sampler=HardwareAwareSampler(seed=0, state_dir=tmp_path / "pool"))
    with pytest.raises(ConfigError, match=r"\(mig\) has neither uuid nor index.*MIG-"):
        optimize(study, pinned, n_trials=2, devices=devices)
    assert study.trials == []
    assert stray_children() == []


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"n_trials": -1}, "n_trials"),
        ({"timeout": 0}, "timeout"),
        ({"trial_timeout": float("nan")}, "trial_timeout"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"executor": "ray"}, "unknown executor"),
    ],
)
def test_bad_arguments_raise_config_errors(
    tmp_path: Path, options: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        optimize(_study(tmp_path), pinned, **options)  # type: ignore[arg-type]


def test_the_executor_backstop_is_the_largest_trial_timeout_plus_a_margin() -> None:
    from hwaware_optuna._coordinator import BACKSTOP_S, backstop

    assert backstop(None) is None
    assert backstop(5) == 5 + BACKSTOP_S
    assert backstop({"model=slow": 2.0, "*": 9.0}) == 9.0 + BACKSTOP_S
    assert backstop({"model=slow": 2.0}) is None  # other subspaces run without a limit
