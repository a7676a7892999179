"""``optimize`` around each trial: placement deaths, the timeout clock, leftovers, restarts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import psutil
import pytest
from hwaware_optuna import HardwareAwareSampler
from hwaware_optuna._optimize import optimize
from hwaware_optuna._trials import create_running, worker_stamp
from hwaware_optuna._worker_node import run_node
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from hwaware_plugins.errors import ConfigError
from tests._procs import stray_children


def _cpu(folder: Path, slots: int = 1) -> Path:
    path = folder / "devices.toml"
    path.write_text('remote_devices = "simulate"\n'  # node-t is simulated on this machine
                    f'[[device]]\nkind = "cpu"\nhost = "node-t"\ncores = 1\nslots = {slots}\n',
                    encoding="utf-8")
    return path


def _study(folder: Path, base: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    storage = JournalStorage(JournalFileBackend(str(folder / "journal.log")))
    sampler = HardwareAwareSampler(base, seed=0, state_dir=folder / "pool")
    return optuna.create_study(study_name="s", storage=storage, sampler=sampler)


def square(trial: optuna.trial.Trial) -> float:
    """A quick objective."""
    return trial.suggest_float("x", -1, 1) ** 2


class DiesWhilePlacing(optuna.samplers.RandomSampler):
    """Kills its worker process while the first trial is being placed (before the objective)."""

    def __init__(self, marker: str) -> None:
        super().__init__(seed=0)
        self.marker = marker

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(3)
        super().before_trial(study, trial)


class PlacesSlowly(optuna.samplers.RandomSampler):
    """Placement (a fresh worker's warm-up, say) takes ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seed=0)
        self.seconds = seconds

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        time.sleep(self.seconds)
        super().before_trial(study, trial)


def test_a_worker_dying_while_the_trial_is_placed_fails_it_and_it_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    study = _study(tmp_path, DiesWhilePlacing(str(tmp_path / "died")))
    optimize(study, square, n_trials=2, max_retries=1, devices=_cpu(tmp_path))
    trials = study.get_trials(deepcopy=False)
    first = trials[0]
    assert first.state == TrialState.FAIL
    reason = first.user_attrs["hwaware:fail_reason"]
    assert reason.startswith("crash: worker died before the objective started: ")
    assert "code 3" in reason
    assert TrialState.RUNNING not in {t.state for t in trials}
    [retry] = [t for t in trials if t.user_attrs.get("hwaware:retry") == 1]
    assert retry.state == TrialState.COMPLETE
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 2
    assert stray_children() == []


def test_trial_timeout_counts_the_objective_only_not_placement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    study = _study(tmp_path, PlacesSlowly(1.5))
    optimize(study, square, n_trials=2, trial_timeout=1.0, devices=_cpu(tmp_path))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2


@dataclass(frozen=True)
class LeavesAChild:
    """Spawns a ``sleep`` it never waits for and records its pid."""

    folder: str

    def __call__(self, trial: optuna.trial.Trial) -> float:
        child = subprocess.Popen(["sleep", "60"])
        with open(Path(self.folder) / "children.txt", "a") as handle:
            handle.write(f"{child.pid}\n")
        return 0.0


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_processes_an_objective_spawned_do_not_outlive_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between trials of one worker the executor decides what lives on (a reusable pool may,
    # see docs/executors.md); when optimize returns nothing the objectives spawned is left.
    monkeypatch.chdir(tmp_path)
    study = _study(tmp_path)
    optimize(study, LeavesAChild(str(tmp_path)), n_trials=3, devices=_cpu(tmp_path))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    pids = [int(p) for p in (tmp_path / "children.txt").read_text().split()]
    assert len(pids) == 3
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if _alive(pid)]
    assert stray_children() == []


def _left_running(study: optuna.Study, pid: int, node: str) -> int:
    """A trial as a worker of an earlier run left it: RUNNING, stamped with ``pid``."""
    trial = create_running(study._storage, study._study_id, worker_stamp(pid, node))
    return trial.number


def _stamped_dead(study: optuna.Study, node: str) -> int:
    """A RUNNING trial stamped with a worker process that has since died."""
    process = subprocess.Popen(["sleep", "60"])
    number = _left_running(study, process.pid, node)
    process.kill()
    process.wait()
    return number


Resume = Callable[[optuna.Study, Path], None]


def _resume_with_optimize(study: optuna.Study, folder: Path) -> None:
    optimize(study, square, n_trials=1, max_retries=1, devices=_cpu(folder))


def _resume_with_worker(study: optuna.Study, folder: Path) -> None:
    run_node(storage=f"journal:{folder / 'journal.log'}", study_name=study.study_name,
             objective=f"{__name__}:square", devices=str(_cpu(folder)), n_trials=2,
             max_retries=1)


@pytest.mark.parametrize("resume", [_resume_with_optimize, _resume_with_worker],
                         ids=["optimize", "hwaware-worker"])
def test_a_restart_fails_and_retries_the_trials_dead_workers_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resume: Resume
) -> None:
    monkeypatch.chdir(tmp_path)
    study = _study(tmp_path)
    orphan = _stamped_dead(study, "node-t")
    live = _left_running(study, os.getpid(), "node-t")  # a worker still running elsewhere
    other_node = _stamped_dead(study, "node-u")  # another node's: not ours to judge
    resume(study, tmp_path)
    trials = study.get_trials(deepcopy=False)
    assert trials[orphan].state == TrialState.FAIL
    reason = trials[orphan].user_attrs["hwaware:fail_reason"]
    assert reason.startswith("crash: its worker process ") and "on node-t died" in reason
    [retry] = [t for t in trials if t.system_attrs.get("failed_trial") == orphan]
    assert retry.state == TrialState.COMPLETE
    assert trials[live].state == TrialState.RUNNING
    assert trials[other_node].state == TrialState.RUNNING


ROOT = Path(__file__).resolve().parents[3]

# A node whose sampler takes a minute to place its one trial, on SQLite with a 1 s heartbeat.
NODE_SCRIPT = """
import sys, warnings, optuna
from optuna.storages import RDBStorage
from hwaware_optuna import HardwareAwareSampler
from hwaware_optuna._optimize import optimize
from tests.adapters.optuna.test_optimize_lifecycle import PlacesSlowly, square

folder = sys.argv[1]
warnings.simplefilter("ignore")
storage = RDBStorage(f"sqlite:///{folder}/db.sqlite", heartbeat_interval=1, grace_period=2)
sampler = HardwareAwareSampler(PlacesSlowly(60.0), seed=0, state_dir=f"{folder}/pool")
study = optuna.create_study(study_name="s", storage=storage, sampler=sampler)
optimize(study, square, n_trials=1, devices=f"{folder}/devices.toml")
"""


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _storage(folder: Path) -> optuna.storages.RDBStorage:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(f"sqlite:///{folder / 'db.sqlite'}",
                                          heartbeat_interval=1, grace_period=2)


def _running_trials(folder: Path) -> list[optuna.trial.FrozenTrial]:
    try:
        study = optuna.load_study(study_name="s", storage=_storage(folder))
    except Exception:  # not created yet
        return []
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_trial_being_placed_has_a_heartbeat_so_it_fails_when_its_node_dies(
    tmp_path: Path,
) -> None:
    _cpu(tmp_path)
    node = subprocess.Popen([sys.executable, "-c", NODE_SCRIPT, str(tmp_path)], cwd=ROOT)
    try:
        _wait_for(lambda: bool(_running_trials(tmp_path)), 60, "a trial being placed")
        time.sleep(1.5)  # still placing: only the supervisor's heartbeat keeps it alive
    finally:
        node.kill()
        node.wait()
    [trial] = _running_trials(tmp_path)
    worker = trial.user_attrs["hwaware:worker_pid"]
    _wait_for(lambda: not _alive(worker), 15, "the dead node's worker to end")
    time.sleep(2.5)  # past the grace period
    study = optuna.load_study(study_name="s", storage=_storage(tmp_path))
    optuna.storages.fail_stale_trials(study)  # what every other node does before each trial
    assert study.get_trials(deepcopy=False)[0].state == TrialState.FAIL


def test_a_node_reports_the_studys_ended_trials_after_each_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    study = _study(tmp_path)
    seen: list[tuple[int, int]] = []
    summary = run_node(storage=f"journal:{tmp_path / 'journal.log'}", study_name="s",
                       objective=f"{__name__}:square", devices=str(_cpu(tmp_path)), n_trials=4,
                       progress=lambda done, node: seen.append((done, node.ended)))
    assert [mine for _, mine in seen] == [1, 2, 3, 4] and summary.ended == 4
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1][0] == 4 == len(study.trials)


def slow_or_fast(trial: optuna.trial.Trial) -> float:
    """The ``slow`` model sleeps 1.5 s, the ``fast`` one returns at once."""
    model = trial.suggest_categorical("model", ["slow", "fast"])
    x = trial.suggest_float(f"x_{model}", -1, 1)
    if model == "slow":
        time.sleep(1.5)
    return x * x


def test_trial_timeout_can_differ_per_subspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    sampler = HardwareAwareSampler(seed=0, state_dir=tmp_path / "pool", branch_params=["model"])
    study = optuna.create_study(study_name="s", storage=storage, sampler=sampler)
    optimize(study, slow_or_fast, n_trials=8, devices=_cpu(tmp_path, slots=2),
             trial_timeout={"model=slow": 0.5, "*": 30})
    by_subspace: dict[str, set[str]] = {}
    for t in study.trials:
        by_subspace.setdefault(t.user_attrs["hwaware:subspace"], set()).add(t.state.name)
    assert by_subspace.get("model=slow") == {"FAIL"}
    assert by_subspace.get("model=fast") == {"COMPLETE"}
    for t in study.trials:
        if t.state == TrialState.FAIL:
            assert t.user_attrs["hwaware:fail_reason"] == "timeout: ran past trial_timeout=0.5 s"
    with pytest.raises(ConfigError, match=r"trial_timeout\['model=slow'\]"):
        optimize(study, slow_or_fast, n_trials=1, devices=_cpu(tmp_path),
                 trial_timeout={"model=slow": 0})


_JOBLIB_SCRIPT = """
import os, sys, time
import optuna
from hwaware_optuna import optimize

optuna.logging.set_verbosity(optuna.logging.WARNING)
devices, pids_file = sys.argv[1], sys.argv[2]


def objective(trial):
    from joblib import Parallel, delayed
    pids = Parallel(n_jobs=2)(delayed(os.getpid)() for _ in range(8))
    with open(pids_file, "a") as handle:
        handle.write(" ".join(str(p) for p in set(pids)) + " ")
    return trial.suggest_float("x", -1, 1) ** 2


study = optuna.create_study()
optimize(study, objective, n_trials=3, devices=devices)
print(sum(t.state.name == "COMPLETE" for t in study.trials))
"""


def test_an_objective_using_joblib_runs_quietly_and_its_pool_is_gone_when_the_script_ends(
    tmp_path: Path,
) -> None:
    pytest.importorskip("joblib")
    pids_file = tmp_path / "loky-pids"
    script = tmp_path / "script.py"
    script.write_text(_JOBLIB_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(_cpu(tmp_path)), str(pids_file)],
        capture_output=True, text=True, timeout=120, check=False,
        env=dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path)),
    )
    assert done.returncode == 0 and done.stdout.split() == ["3"], done.stderr
    assert done.stderr.strip() == ""  # no resource-tracker warning, no loky traceback
    loky_pids = {int(p) for p in pids_file.read_text().split()}
    assert len(loky_pids) == 2  # one pool, kept between the trials of one worker
    assert not any(psutil.pid_exists(pid) for pid in loky_pids)


def sleepy_square(trial: optuna.trial.Trial) -> float:
    """A trial of 0.3 s."""
    time.sleep(0.3)
    return trial.suggest_float("x", -1, 1) ** 2


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_running_node_fails_a_dead_nodes_trials_and_runs_their_retries(
    tmp_path: Path,
) -> None:
    # With heartbeats, the trials of a node that died stayed RUNNING for ever: no other
    # node ever failed them (a restart of the dead node did not either).
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'db.sqlite'}", heartbeat_interval=1, grace_period=1,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(1),
    )
    sampler = HardwareAwareSampler(seed=0, state_dir=tmp_path / "pool")
    study = optuna.create_study(study_name="s", storage=storage, sampler=sampler)
    dead = create_running(storage, study._study_id, worker_stamp(os.getpid(), "node-dead"))
    storage.record_heartbeat(dead._trial_id)  # its last heartbeat: it goes stale from here
    optimize(study, sleepy_square, n_trials=12, devices=_cpu(tmp_path))
    trials = study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert [t.state for t in retries] == [TrialState.COMPLETE]
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


def test_a_trial_made_running_but_not_yet_submitted_fails_on_an_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Ctrl-C between making the trial RUNNING and handing it to the executor left it
    # RUNNING although the run ended "cleanly" (exit 130).
    from hwaware_plugins.executors import LocalExecutor

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalExecutor, "submit", interrupted)
    study = _study(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        optimize(study, square, n_trials=3, devices=_cpu(tmp_path))
    [trial] = study.get_trials(deepcopy=False)
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["hwaware:fail_reason"] == "interrupted"


def sleeps_long(trial: optuna.trial.Trial) -> float:
    """Runs past any short trial timeout."""
    time.sleep(30)
    return 0.0


def test_a_node_whose_trials_all_time_out_counts_the_workers_that_ran_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its summary said "by 0 worker processes": only completed trials were counted.
    monkeypatch.chdir(tmp_path)
    _study(tmp_path)
    summary = run_node(storage=f"journal:{tmp_path / 'journal.log'}", study_name="s",
                       objective=f"{__name__}:sleeps_long", devices=str(_cpu(tmp_path)),
                       n_trials=2, trial_timeout=0.5)
    assert summary.timed_out == 2 and summary.workers_started >= 1
