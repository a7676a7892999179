"""``optimize`` packs several trials on one GPU by memory, and an OOM lowers the packing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from hwaware_optuna import HardwareAwareSampler
from hwaware_optuna._optimize import optimize
from optuna.trial import TrialState

from tests._procs import stray_children

GPU_MB = 8 * 1024


def _one_gpu(folder: Path) -> Path:
    """One declared 8 GiB GPU (nothing touches CUDA)."""
    path = folder / "devices.toml"
    path.write_text(
        'remote_devices = "simulate"\n'
        '[[device]]\nkind = "gpu"\nname = "G8"\nmemory_gb = 8\nhost = "node-t"\n'
        'uuids = ["GPU-00000000-2222-3333-4444-555555555555"]\n', encoding="utf-8")
    return path


def _packed_study(folder: Path) -> optuna.Study:
    sampler = HardwareAwareSampler(seed=0, state_dir=folder / "pool", packing="memory")
    return optuna.create_study(sampler=sampler)


@dataclass(frozen=True)
class WaitsForAPeer:
    """Marks itself, then waits (up to 30 s) until another trial has marked itself too."""

    folder: str

    def __call__(self, trial: optuna.trial.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        Path(self.folder, f"trial-{trial.number}").touch()
        deadline = time.monotonic() + 30
        while len(list(Path(self.folder).glob("trial-*"))) < 2:
            if time.monotonic() > deadline:
                trial.set_user_attr("saw_peer", False)
                return x * x
            time.sleep(0.05)
        trial.set_user_attr("saw_peer", True)
        return x * x


def test_two_trials_share_one_gpu_when_their_memory_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    markers = tmp_path / "markers"
    markers.mkdir()
    study = _packed_study(tmp_path)
    optimize(study, WaitsForAPeer(str(markers)), n_trials=2, memory_mb=3000,
             devices=_one_gpu(tmp_path))
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert [t.user_attrs["saw_peer"] for t in trials] == [True, True]  # ran at the same time
    assert {t.user_attrs["hwaware:device_id"] for t in trials} == {"node-t/gpu:0"}
    assert stray_children() == []


def oom_first(trial: optuna.trial.Trial) -> float:
    """Runs out of memory on its first attempt, not on its retry."""
    x = trial.suggest_float("x", -1, 1)
    if "hwaware:retry" not in trial.user_attrs:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    return x * x


def test_an_oom_retry_reserves_more_on_the_same_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    study = _packed_study(tmp_path)
    optimize(study, oom_first, n_trials=1, max_retries=1, memory_mb=2000,
             devices=_one_gpu(tmp_path))
    failed, retry = study.trials
    assert failed.state == TrialState.FAIL
    # Packed by memory, the need grows from the 2000 MiB reserved (not from the whole
    # GPU, as with exclusive slots), so the same GPU holds the retry at lower packing.
    assert failed.user_attrs["hwaware:oom_action"] == "re-placing with 3000 MiB"
    assert retry.state == TrialState.COMPLETE and retry.params == failed.params
    assert retry.user_attrs["hwaware:memory_need_mb"] == 3000
    assert retry.user_attrs["hwaware:device_id"] == failed.user_attrs["hwaware:device_id"]
