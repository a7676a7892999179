"""Two processes share a study through SQLite or a journal file, and the device pool."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from hwaware_optuna import HardwareAwareSampler
from optuna.trial import TrialState

from ._helpers import two_branch
from ._worker import storage_of

WORKER = Path(__file__).with_name("_worker.py")
DEVICES = """\
[[device]]
kind = "cpu"
name = "cpu"
cores = 2
"""


@pytest.mark.slow  # two Python processes per storage: about 5 s each
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_processes_share_history_and_slots(tmp_path: Path, kind: str) -> None:
    spec = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else (
        f"journal:{tmp_path / 'study.log'}"
    )
    devices = tmp_path / "devices.toml"
    devices.write_text(DEVICES)
    state_dir = tmp_path / "pool"
    optuna.create_study(study_name="shared", storage=storage_of(spec))

    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), spec, "shared", str(devices), str(state_dir), "6", seed],
            stderr=subprocess.PIPE,
            text=True,
            # CPU slots are shared across processes only on request (CPU courtesy).
            env=dict(os.environ, HWAWARE_CPU_COURTESY="1"),
        )
        for seed in ("1", "2")
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err

    study = optuna.load_study(study_name="shared", storage=storage_of(spec))
    trials = study.trials
    assert len(trials) == 12 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["span"][3] for t in trials}) == 2
    spans: dict[str, list[tuple[float, float]]] = {}
    for trial in trials:
        assert trial.user_attrs["hwaware:trial"] == trial.number
        slot, start, end, _ = trial.user_attrs["span"]
        assert slot == trial.user_attrs["hwaware:device_id"]
        spans.setdefault(trial.user_attrs["hwaware:slot_id"], []).append((start, end))
    for intervals in spans.values():
        intervals.sort()
        for (_, end), (start, _) in itertools.pairwise(intervals):
            assert start >= end, "two processes held the same slot at once"

    # A third process (here: this one) rebuilds the scheduler's view from the storage alone.
    sampler = HardwareAwareSampler(
        devices=devices, state_dir=state_dir, seed=0, branch_params=["classifier"]
    )
    study = optuna.load_study(study_name="shared", storage=storage_of(spec), sampler=sampler)
    study.optimize(two_branch, n_trials=1)
    history = sampler.history
    assert history is not None and len(history) == 13
    assert sampler.subspaces == ["classifier=forest", "classifier=svm"]
    assert sum(1 for t in study.trials if "hwaware:runtime_s" in t.user_attrs) == 13
