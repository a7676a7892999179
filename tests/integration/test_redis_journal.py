"""``optimize`` with two worker processes on optuna's Redis journal storage."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from hwaware_optuna import HardwareAwareSampler
from hwaware_optuna._optimize import optimize
from optuna.storages.journal import JournalRedisBackend, JournalStorage
from optuna.trial import TrialState

from ._mp_objectives import quadratic

pytestmark = pytest.mark.integration


def test_two_processes_share_a_redis_journal_study(
    redis_url: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = redis_url
    devices = tmp_path / "devices.toml"
    devices.write_text('remote_devices = "simulate"\n'  # node-r is simulated on this machine
                       '[[device]]\nkind = "cpu"\nhost = "node-r"\ncores = 1\nslots = 2\n')
    storage = JournalStorage(JournalRedisBackend(url, prefix=prefix))
    sampler = HardwareAwareSampler(seed=0, state_dir=tmp_path / "pool")
    study = optuna.create_study(study_name="redis", storage=storage, sampler=sampler)
    optimize(study, quadratic, n_trials=12, devices=devices)

    trials = optuna.load_study(study_name="redis", storage=storage).trials
    assert len(trials) == 12
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    devices_of: dict[int, set[str]] = {}
    for t in trials:  # a worker process never moves to another device (the two slots of
        # one core share their pinning, so one worker process may serve both)
        devices_of.setdefault(t.user_attrs["hwaware:worker_pid"], set()).add(
            t.user_attrs["hwaware:device_id"])
    assert all(len(devices) == 1 for devices in devices_of.values())
    assert len(devices_of) <= 2  # persistent workers: at most one per slot, reused
    assert {t.user_attrs["hwaware:slot_id"] for t in trials} == {
        "node-r/cpu:0#0", "node-r/cpu:0#1"
    }
    assert all(t.user_attrs["hwaware:trial"] == t.number for t in trials)
