"""``optimize``: an out-of-memory trial is retried with a larger need, on a bigger device."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from hwaware_optuna import HardwareAwareSampler, device_for
from hwaware_optuna._optimize import optimize
from optuna.trial import TrialState

from tests._procs import stray_children

SMALL_MB, BIG_MB = 8 * 1024, 16 * 1024


def _two_gpus(folder: Path) -> Path:
    """An 8 GiB and a 16 GiB GPU (declared; nothing touches CUDA)."""
    text = 'remote_devices = "simulate"\n' + "".join(
        f'[[device]]\nkind = "gpu"\nname = "G{gb}"\nmemory_gb = {gb}\nhost = "node-t"\n'
        f'uuids = ["GPU-0000000{n}-2222-3333-4444-555555555555"]\n\n'
        for n, gb in enumerate((8, 16))
    )
    path = folder / "devices.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _study(folder: Path) -> optuna.Study:
    return optuna.create_study(sampler=HardwareAwareSampler(seed=0, state_dir=folder / "pool"))


OOM = "CUDA out of memory. Tried to allocate 2.00 GiB"


@dataclass(frozen=True)
class TooBigForTheSmallGpu:
    """Runs out of memory on the small GPU; on the big one it first waits for that to happen,
    so the small GPU surely gets a trial."""

    marker: str

    def __call__(self, trial: optuna.trial.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        if device_for(trial).memory_total_mb == SMALL_MB:
            Path(self.marker).touch()
            raise RuntimeError(OOM)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        return x * x


def always_oom(trial: optuna.trial.Trial) -> float:
    """Runs out of memory wherever it runs."""
    trial.suggest_float("x", -1, 1)
    raise RuntimeError(OOM)


def test_an_oom_trial_is_retried_on_the_gpu_with_more_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    study = _study(tmp_path)
    with caplog.at_level(logging.WARNING, logger="hwaware_optuna"):
        optimize(study, TooBigForTheSmallGpu(str(tmp_path / "oom-seen")), n_trials=2,
                 max_retries=1, devices=_two_gpus(tmp_path))
    need = int(SMALL_MB * 1.5)
    # Every trial placed on the small GPU runs out of memory there (at least one is, as the
    # big GPU's trials wait for it; under load both new trials can be); each is retried once.
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert 1 <= len(failed) <= 2
    for trial in failed:
        assert trial.user_attrs["hwaware:fail_reason"].startswith("oom: RuntimeError: CUDA out")
        assert trial.user_attrs["hwaware:device_id"].endswith("gpu:0")  # the 8 GiB one
        assert trial.user_attrs["hwaware:oom_action"] == f"re-placing with {need} MiB"
        [retry] = [t for t in study.trials
                   if t.system_attrs.get("failed_trial") == trial.number]
        assert retry.state == TrialState.COMPLETE and retry.params == trial.params
        assert retry.user_attrs["hwaware:memory_need_mb"] == need
        assert retry.user_attrs["hwaware:device_id"].endswith("gpu:1")  # the 16 GiB one
        assert "hwaware:oom_action" not in retry.user_attrs
    assert f"ran out of memory on node-t/gpu:0; re-placing with {need} MiB" in caplog.text
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) == 2
    assert stray_children() == []


def test_oom_retries_grow_the_need_and_stop_when_no_device_is_big_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    study = _study(tmp_path)
    with caplog.at_level(logging.WARNING, logger="hwaware_optuna"):
        optimize(study, always_oom, n_trials=1, max_retries=5, devices=_two_gpus(tmp_path))
    attempts = study.trials
    # The first attempt may land on either GPU; every retry is on a bigger one.
    assert 1 <= len(attempts) <= 2
    assert all(t.state == TrialState.FAIL for t in attempts)
    sizes = [SMALL_MB if t.user_attrs["hwaware:device_id"].endswith("gpu:0") else BIG_MB
             for t in attempts]
    assert sizes == sorted(set(sizes)) and sizes[-1] == BIG_MB
    last = attempts[-1]
    big_need = int(BIG_MB * 1.5)
    assert last.user_attrs["hwaware:memory_need_mb"] == big_need
    assert last.user_attrs["hwaware:oom_action"] == (
        f"not re-placed: no device of this node has {big_need} MiB to give it"
    )
    assert "not re-placed" in caplog.text


def test_without_retries_the_oom_decision_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    study = _study(tmp_path)
    optimize(study, always_oom, n_trials=1, devices=_two_gpus(tmp_path))
    [trial] = study.trials
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["hwaware:oom_action"] == (
        "not re-placed: retried 0 of max_retries=0 times"
    )
