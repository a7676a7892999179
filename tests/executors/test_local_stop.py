"""LocalExecutor: timeouts, interruption, Ctrl-C, SIGTERM and shutdown leave no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from hwaware_plugins.executors import LocalExecutor

from . import _tasks
from .conftest import GPUS

Pool = Callable[..., Any]


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def _wait_for_file(path: Path, seconds: float = 20.0) -> int:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return int(path.read_text())


def _wait_running(ex: LocalExecutor, count: int, seconds: float = 20.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while len(ex.running_pids()) < count:
        assert time.monotonic() < deadline, "workers never started"
        time.sleep(0.02)
    return ex.running_pids()


def test_timeout_kills_the_worker_and_its_grandchild(make_pool: Pool, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild"
    pool = make_pool()
    with LocalExecutor(pool, timeout=30, kill_grace_s=1.0) as ex:
        future = ex.submit(_tasks.spawn_and_sleep, str(pid_file), 60, timeout=1.0)
        grandchild = _wait_for_file(pid_file)
        outcome = future.result()
    assert outcome.state == "timeout" and "1 s timeout" in (outcome.error or "")
    assert outcome.exit_code == -signal.SIGTERM
    assert _gone(grandchild) and pool.active_leases() == []


def test_sigterm_ignoring_worker_is_killed_after_the_grace(make_pool: Pool) -> None:
    with LocalExecutor(make_pool(GPUS[:1]), kill_grace_s=0.3) as ex:
        ex.submit(os.getpid).result()  # a warm worker: the task ignores SIGTERM within 0.5 s
        outcome = ex.submit(_tasks.ignore_sigterm_and_sleep, 60, timeout=0.5).result()
    assert outcome.state == "timeout" and outcome.exit_code == -signal.SIGKILL


def test_interrupt_cancels_running_and_waiting_tasks(make_pool: Pool) -> None:
    pool = make_pool()
    ex = LocalExecutor(pool, max_workers=3)
    futures = [ex.submit(_tasks.sleep_and_stamp, 60) for _ in range(5)]
    pids = _wait_running(ex, 3)
    assert ex.interrupt() == 5
    outcomes = [f.result(timeout=30) for f in futures]
    ex.shutdown()
    assert [o.state for o in outcomes] == ["cancelled"] * 5
    assert all(_gone(pid) for pid in pids) and ex.running_pids() == []
    assert pool.active_leases() == []


def test_ctrl_c_while_waiting_kills_every_worker(make_pool: Pool) -> None:
    pool = make_pool()
    ex = LocalExecutor(pool)
    futures = [ex.submit(_tasks.sleep_and_stamp, 60) for _ in range(2)]
    pids = _wait_running(ex, 2)
    main = threading.main_thread().ident
    assert main is not None
    threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        futures[0].result()
    assert all(_gone(pid) for pid in pids)
    assert futures[1].result(timeout=30).state == "cancelled"
    ex.shutdown()


def test_shutdown_with_cancel_running_stops_everything(make_pool: Pool) -> None:
    pool = make_pool()
    ex = LocalExecutor(pool)
    future = ex.submit(_tasks.sleep_and_stamp, 60)
    pids = _wait_running(ex, 1)
    ex.shutdown(wait=True, cancel_running=True)
    assert future.result().state == "cancelled" and all(_gone(pid) for pid in pids)
    with pytest.raises(RuntimeError, match="shut down"):
        ex.submit(_tasks.add, 1, 2)


def test_sigterm_to_the_parent_kills_its_workers(tmp_path: Path) -> None:
    pid_file = tmp_path / "worker"
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path[:0] = {sys.path!r}
        from hwaware_plugins.executors import LocalExecutor
        from hwaware_plugins.hardware import Device
        from hwaware_plugins.hardware._pool import DevicePool
        from tests.executors import _tasks
        pool = DevicePool([Device(id="cpu", kind="cpu", name="CPU")], name="sigterm",
                          state_dir={str(tmp_path)!r})
        with LocalExecutor(pool, kill_grace_s=1.0) as ex:
            future = ex.submit(_tasks.spawn_and_sleep, {str(pid_file)!r}, 60)
            future.result()
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    grandchild = _wait_for_file(pid_file, 30)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == 128 + signal.SIGTERM
    assert _gone(grandchild)
    assert not [p for p in psutil.process_iter(["cmdline"])
                if "hwaware_plugins.executors._child" in " ".join(p.info["cmdline"] or [])
                and p.ppid() == parent.pid]
    assert os.path.exists(pid_file)
