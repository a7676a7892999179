"""Worker processes and their process groups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from hwaware_plugins.executors._process import group_members, terminate_workers


class _Leader:
    """The slice of PooledWorker that terminate_workers uses."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.pid = proc.pid

    def has_members(self) -> bool:
        return bool(group_members(self.pid))

    def signal_group(self, signum: int) -> None:
        os.killpg(self.pid, signum)


def _group_with_grandchild(script: str) -> subprocess.Popen[bytes]:
    code = (
        "import subprocess, sys, time, signal\n"
        f"{script}\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 20
    while len(group_members(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc


def test_sigterm_stops_the_whole_group() -> None:
    proc = _group_with_grandchild("")
    assert len(group_members(proc.pid)) == 2
    killed = terminate_workers([_Leader(proc)], grace_s=5.0)  # type: ignore[list-item]
    assert killed == [] and group_members(proc.pid) == []
    assert proc.wait(timeout=5) == -signal.SIGTERM


def test_sigkill_follows_when_sigterm_is_ignored() -> None:
    proc = _group_with_grandchild("signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    started = time.monotonic()
    killed = terminate_workers([_Leader(proc)], grace_s=0.3)  # type: ignore[list-item]
    assert killed == [proc.pid] and group_members(proc.pid) == []
    assert proc.wait(timeout=5) == -signal.SIGKILL
    assert time.monotonic() - started < 3.0


def test_empty_groups_return_at_once() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait()
    started = time.monotonic()
    assert terminate_workers([_Leader(proc)], grace_s=5.0) == []  # type: ignore[list-item]
    assert time.monotonic() - started < 1.0
