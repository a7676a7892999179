"""Forked workers (``start_method="fork"``) behave as spawned ones do."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.executors import LocalExecutor, _fork
from hwaware_plugins.executors._payload import task_payload
from hwaware_plugins.executors._worker import PooledWorker
from hwaware_plugins.hardware import Device

from . import _fork_tasks
from .conftest import GPUS

Pool = Callable[..., Any]
ROOT = Path(__file__).resolve().parents[2]


def _run(make_pool: Pool, fn: Callable[..., Any], *args: Any, **options: Any) -> Any:
    with LocalExecutor(make_pool((GPUS[0],)), **options) as ex:
        outcome = ex.submit(fn, *args).result()
    assert outcome.state == "complete", outcome
    return outcome.value


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_worker_leads_its_own_group_in_the_coordinators_session(
    make_pool: Pool, method: str,
) -> None:
    seen = _run(make_pool, _fork_tasks.identity, start_method=method)
    assert seen["pid"] == seen["pgid"] != os.getpgrp()
    assert seen["sid"] == os.getsid(0)  # one scheduling group with the user's program
    assert seen["sigttou_ignored"] and seen["stdin_empty"]


def test_a_forked_worker_has_its_group_before_the_start_returns() -> None:
    """Killing a just-started worker's group must kill it: the group exists at once."""
    env = dict(os.environ)
    for _ in range(5):
        worker = PooledWorker.start(python=sys.executable, env=env, cpu_affinity=None,
                                    key=("dev", None, ()), start_method="fork")
        try:
            assert os.getpgid(worker.pid) == worker.pid
        finally:
            worker.kill(1.0)
            worker.collect()


def test_a_forked_worker_has_the_spawned_workers_environment(make_pool: Pool) -> None:
    forked = _run(make_pool, _fork_tasks.identity, start_method="fork")
    spawned = _run(make_pool, _fork_tasks.identity, start_method="spawn")
    ignore = {"HWAWARE_LEASE_ID", "HWAWARE_TASK_LABEL"}
    assert {k: v for k, v in forked["env"].items() if k not in ignore} == \
        {k: v for k, v in spawned["env"].items() if k not in ignore}
    assert forked["env"]["CUDA_VISIBLE_DEVICES"] == GPUS[0].uuid


def test_a_forked_worker_is_pinned_to_its_slots_cores(make_pool: Pool) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores")
    cpu = Device(id="cpu-pair", kind="cpu", name="cpu", cores=2, slots=2)
    with LocalExecutor(make_pool([cpu]), start_method="fork") as ex:
        futures = [ex.submit(_fork_tasks.identity, 0.2) for _ in range(4)]
        seen = [future.result().value for future in futures]
    pinnings = {(s["pid"], tuple(s["affinity"]), s["env"]["OMP_NUM_THREADS"]) for s in seen}
    assert len(pinnings) == 2  # two workers, one pinning each, never both cores
    assert {len(affinity) for _, affinity, _ in pinnings} == {1}
    assert {threads for _, _, threads in pinnings} == {"1"}


def test_signal_handlers_are_those_of_a_fresh_worker(make_pool: Pool) -> None:
    # The executor's context manager installs a SIGTERM handler here; the worker must not have it.
    seen = _run(make_pool, _fork_tasks.identity, start_method="fork")
    assert seen["sigterm_default"] and seen["sigint_default"]


def _pipe_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("pipe:"):
            inodes.add(target)
    return inodes


def _inode(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.mark.parametrize("first", ["fork", "spawn"])
def test_a_forked_worker_holds_no_other_workers_pipes(first: str) -> None:
    key = ("dev", None, ())
    env = dict(os.environ)
    older = PooledWorker.start(python=sys.executable, env=env, cpu_affinity=None, key=key,
                               start_method=first)
    newer = PooledWorker.start(python=sys.executable, env=env, cpu_affinity=None, key=key,
                               start_method="fork")
    try:
        # One task through the younger worker: its start-up is over.
        reply = newer.run({"kind": "task", "payload": task_payload(os.getpid, (), {}),
                           "env": {}}, timeout=60)
        assert reply.record is not None and reply.record["ok"]
        assert older.popen.stdin is not None
        theirs = {_inode(older.popen.stdin.fileno()), _inode(older._result_fd)}
        assert not theirs & _pipe_inodes(newer.pid)
        # The coordinator drops the older worker: it sees end-of-file and leaves,
        # although a younger worker was forked while its pipe was open.
        older.popen.stdin.close()
        deadline = time.monotonic() + 10
        while not older.exited() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert older.exited()
        assert not newer.exited()
    finally:
        for worker in (older, newer):
            worker.kill(1.0)
            worker.collect()


def test_the_coordinators_exit_hooks_do_not_run_in_a_forked_worker(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    script = textwrap.dedent(f"""
        import atexit, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from hwaware_plugins.executors import LocalExecutor
        from hwaware_plugins.hardware import Device
        from tests.executors import _fork_tasks

        def note():
            with open({str(notes)!r}, "a") as handle:
                handle.write(f"coordinator {{os.getpid()}}\\n")

        atexit.register(note)
        gpu = Device(id="g", kind="gpu", name="G", uuid="GPU-1", memory_total_mb=1000, index=0)
        with LocalExecutor([gpu], start_method="fork") as ex:
            out = ex.submit(_fork_tasks.register_exit_note, {str(notes)!r}).result()
        assert out.state == "complete", out
        print(out.value)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HWAWARE_STATE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    worker = int(done.stdout.split()[-1])
    lines = sorted(notes.read_text().splitlines())
    # The worker ran its own exit hook (as a spawned one does) and not the coordinator's.
    assert lines == sorted([f"worker {worker}", f"coordinator {done.args and _pid(lines)}"])
    assert done.stderr == ""


def _pid(lines: list[str]) -> str:
    return next(line.split()[1] for line in lines if line.startswith("coordinator"))


def test_auto_spawns_when_cuda_is_initialised_here(make_pool: Pool,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("torch")
    fake.HWAWARE_FAKE = True  # type: ignore[attr-defined]
    fake.cuda = types.SimpleNamespace(is_initialized=lambda: True)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake)
    # An SQLite database another test left open in this process would make auto spawn too.
    monkeypatch.setattr(_fork, "sqlite_open", lambda: False)
    assert _fork.resolve_start_method("auto", python=sys.executable) == "spawn"
    assert _run(make_pool, _fork_tasks.fake_torch_inherited) is False
    fake.cuda = types.SimpleNamespace(is_initialized=lambda: False)  # type: ignore[attr-defined]
    assert _run(make_pool, _fork_tasks.fake_torch_inherited) is True


@pytest.mark.parametrize(
    ("platform", "python", "cuda", "expected"),
    [("linux", "same", False, "fork"), ("linux", "same", True, "spawn"),
     ("linux", "/usr/bin/other-python", False, "spawn"), ("darwin", "same", False, "spawn")],
)
def test_auto_forks_only_where_it_is_safe(platform: str, python: str, cuda: bool,
                                          expected: str) -> None:
    chosen = _fork.choose_start_method(
        "auto", python=sys.executable if python == "same" else python,
        executable=sys.executable, platform=platform, can_fork=True, cuda_ready=cuda)
    assert chosen == expected


def test_auto_spawns_while_an_sqlite_database_no_gate_vouches_for_is_open(tmp_path: Path) -> None:
    assert _fork.choose_start_method("auto", python="p", executable="p", platform="linux",
                                     can_fork=True, cuda_ready=False,
                                     sqlite_in_use=True) == "spawn"
    # In a fresh interpreter: this test process may hold other tests' databases open.
    script = textwrap.dedent(f"""
        import os, sqlite3, sys
        from hwaware_plugins import _forksafe
        from hwaware_plugins.executors import _fork
        seen = [_fork.sqlite_open()]
        connection = sqlite3.connect({str(tmp_path / "study.db")!r})
        connection.execute("create table t (x)")
        connection.commit()
        seen += [_fork.sqlite_open(), _fork.resolve_start_method("auto", python=sys.executable)]
        path = os.path.realpath({str(tmp_path / "study.db")!r})
        seen.append(set(_fork._sqlite_descriptors()) == {{path}})
        gate = _forksafe.DatabaseGate()  # an adapter vouching for every use of it
        _forksafe.register_gate({str(tmp_path / "study.db")!r}, gate)
        seen += [_fork.sqlite_open(), _fork.resolve_start_method("auto", python=sys.executable)]
        gate.spoil()
        seen += [_fork.sqlite_open(), _fork.resolve_start_method("auto", python=sys.executable)]
        connection.close()
        seen.append(_fork.sqlite_open())
        print(seen)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("[False, True, 'spawn', True, False, 'fork', True, 'spawn', "
                                   "False]")


def test_an_explicit_choice_is_kept() -> None:
    for method in ("fork", "spawn"):
        assert _fork.choose_start_method(method, python="x", executable="y", platform="linux",
                                         can_fork=True, cuda_ready=True) == method


def test_a_bad_start_method_is_refused_with_a_clear_error(make_pool: Pool,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="start_method must be 'auto', 'fork' or 'spawn'"):
        LocalExecutor(make_pool((GPUS[0],)), start_method="forkserver").submit(os.getpid)
    monkeypatch.setenv(_fork.START_METHOD_ENV, "threads")
    with pytest.raises(ConfigError, match="HWAWARE_START_METHOD must be"):
        LocalExecutor(make_pool((GPUS[0],))).submit(os.getpid)
    monkeypatch.delenv(_fork.START_METHOD_ENV)
    with pytest.raises(ConfigError, match="runs workers in this interpreter"):
        _fork.check_start_method("fork", python="/bin/sh")


def test_the_environment_variable_chooses_when_the_executor_is_not_told(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_fork.START_METHOD_ENV, "spawn")
    assert _fork.check_start_method(None, python=sys.executable) == "spawn"
    assert _fork.check_start_method("fork", python=sys.executable) == "fork"
    monkeypatch.delenv(_fork.START_METHOD_ENV)
    assert _fork.check_start_method(None, python=sys.executable) == "auto"


def test_thread_pools_are_only_ever_lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    fake = types.ModuleType("torch")
    fake.get_num_threads = lambda: 2  # type: ignore[attr-defined]
    fake.set_num_threads = calls.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # not installed
    _fork.limit_thread_pools({"OMP_NUM_THREADS": "4"})
    assert calls == []
    _fork.limit_thread_pools({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "3"})
    assert calls == [1]
    assert _fork.thread_limit({"OMP_NUM_THREADS": "x"}) is None
    assert _fork.thread_limit({"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "3"}) == 2


def test_a_forked_worker_caps_torchs_thread_pool_at_its_slots_threads(make_pool: Pool) -> None:
    torch = pytest.importorskip("torch")
    if torch.get_num_threads() < 2:
        pytest.skip("torch runs one thread here already")
    cpu = Device(id="cpu-pair", kind="cpu", name="cpu", cores=2, slots=2)
    with LocalExecutor(make_pool([cpu]), start_method="fork") as ex:
        threads = ex.submit(_fork_tasks.torch_threads).result().value
    assert threads == 1


def test_sigterm_of_the_group_ends_a_forked_worker(make_pool: Pool) -> None:
    with LocalExecutor(make_pool((GPUS[0],)), start_method="fork") as ex:
        pid = ex.submit(os.getpid).result().value
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pid in ex.worker_pids() and not _exited(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _exited(pid)


def _exited(pid: int) -> bool:
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


@pytest.mark.parametrize("unbuffered", [True, False])
def test_what_a_task_prints_is_in_the_output_once_the_task_ends(
    tmp_path: Path, unbuffered: bool
) -> None:
    # With `python -u` / PYTHONUNBUFFERED every line shows as it is printed (a task
    # killed at its timeout keeps what it printed); without, by the task's end at latest.
    log = tmp_path / "out.log"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from hwaware_plugins.executors import LocalExecutor
        from hwaware_plugins.hardware import Device

        def shout():
            print("from the task")
            if {unbuffered!r}:
                with open({str(log)!r}) as handle:
                    return handle.read()
            return ""

        gpu = Device(id="g", kind="gpu", name="G", uuid="GPU-1", memory_total_mb=1000, index=0)
        with LocalExecutor([gpu], start_method="fork") as ex:
            during = ex.submit(shout).result().value
            with open({str(log)!r}) as handle:
                after = handle.read()
            sys.stderr.write(repr((during, after)))
    """)
    env = {**os.environ, "HWAWARE_STATE_DIR": str(tmp_path)}
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-c", script], stdout=out,
                              stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    during, after = ast.literal_eval(done.stderr)
    assert after == "from the task\n"
    assert during == ("from the task\n" if unbuffered else "")
