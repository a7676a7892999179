"""SIGTERM or Ctrl-C during ``optimize``: every worker group dies, running trials fail."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

SCRIPT = """
import os, sys, time, optuna
from hwaware_optuna import HardwareAwareSampler
from hwaware_optuna._optimize import optimize
from optuna.storages.journal import JournalFileBackend, JournalStorage

folder = sys.argv[1]

def objective(trial):
    with open(os.path.join(folder, "pids.txt"), "a") as handle:
        handle.write(f"{os.getpid()}\\n")
    time.sleep(120)
    return 0.0

storage = JournalStorage(JournalFileBackend(os.path.join(folder, "journal.log")))
sampler = HardwareAwareSampler(seed=0, state_dir=os.path.join(folder, "pool"))
study = optuna.create_study(study_name="s", storage=storage, sampler=sampler)
optimize(study, objective, n_trials=4, devices=os.path.join(folder, "devices.toml"))
"""


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize(
    "signals", [(signal.SIGTERM,), (signal.SIGINT,), (signal.SIGINT, signal.SIGINT)],
    ids=["sigterm", "ctrl-c", "ctrl-c twice"],
)
def test_a_signal_kills_every_worker_and_fails_running_trials(
    tmp_path: Path, signals: tuple[int, ...]
) -> None:
    (tmp_path / "devices.toml").write_text(
        'remote_devices = "simulate"\n[[device]]\nkind = "cpu"\nhost = "node-t"\ncores = 1\n'
        "slots = 2\n",
        encoding="utf-8",
    )
    parent = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)])
    pids_file = tmp_path / "pids.txt"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if pids_file.exists() and len(pids_file.read_text().split()) == 2:
            break
        time.sleep(0.1)
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == 2
    for signum in signals:  # a second Ctrl-C lands while the first one is cleaning up
        parent.send_signal(signum)
        time.sleep(0.01)
    assert parent.wait(timeout=30) != 0
    assert not [pid for pid in pids if _alive(pid)]
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert len(trials) == 2
    assert {t.state for t in trials} == {TrialState.FAIL}
    assert {t.user_attrs["hwaware:fail_reason"] for t in trials} == {"interrupted"}


def test_a_sigterm_whose_exception_python_dropped_still_ends_the_run() -> None:
    # Python prints "Exception ignored" and drops an exception a signal handler raises
    # inside a weakref or GC callback: the node went on running trials after SIGTERM.
    import signal

    from hwaware_optuna._optimize_setup import sigterm_as_exit

    with sigterm_as_exit() as check_signals:
        check_signals()  # nothing received yet
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        except SystemExit:
            pass  # what the dropped exception amounts to
        with pytest.raises(SystemExit) as ended:
            check_signals()
    assert ended.value.code == 143
