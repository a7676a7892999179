"""One persistent worker process, seen from the executor: start, run a task, retire.

The worker (:mod:`hwaware_plugins.executors._child`) is started in a new
session, so its pid is also the id of a process group holding everything it
spawns; killing the worker always means killing that group. The worker is
reaped only after its group was emptied: while unreaped its pid cannot be
reused, so signalling the group can never hit a stranger.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hwaware_plugins.executors._child import STARTED, read_message
from hwaware_plugins.executors._process import _signal_group, group_members, terminate_workers

CHILD_MODULE = "hwaware_plugins.executors._child"

LOAD_LIMIT_S = 120.0
"""Seconds loading a task (unpickling it: the imports of a fresh worker) may take at
least, when the task has a time limit; a longer limit applies as it is."""

WorkerKey = tuple[str, tuple[int, ...] | None, tuple[tuple[str, str], ...]]
"""What a worker is bound to: device id, CPU cores and the pinning environment."""


@dataclass
class Reply:
    """What came back for one task: the worker's record, or how the wait ended."""

    record: dict[str, Any] | None
    timed_out: bool = False


class PooledWorker:
    """A worker process bound to one slot pinning, reused task after task.

    Thread-safety: :meth:`kill` may be called from any thread (the executor's
    ``interrupt``) while the owning thread is in :meth:`run`; every other
    method is called by the one thread that checked the worker out.
    """

    def __init__(self, popen: subprocess.Popen[bytes], result_fd: int, key: WorkerKey) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.key = key
        self.tasks_run = 0
        self.baseline_mb: float | None = None
        self.last_used = time.monotonic()
        self._result_fd = result_fd
        self._lock = threading.RLock()
        self._reaped = False
        self.broken = False

    @classmethod
    def start(
        cls, *, python: str, env: Mapping[str, str], cpu_affinity: Sequence[int] | None,
        key: WorkerKey,
    ) -> PooledWorker:
        """Start a worker in a new session with ``env`` and ``cpu_affinity``.

        Cost: one interpreter start and the import of the worker module (about
        50-100 ms); the task's own imports come with its first task.
        """
        read_fd, write_fd = os.pipe()
        argv = [python, "-m", CHILD_MODULE, str(write_fd)]
        if cpu_affinity:
            argv.append(",".join(str(core) for core in cpu_affinity))
        try:
            popen = subprocess.Popen(argv, stdin=subprocess.PIPE, env=dict(env),
                                     start_new_session=True, pass_fds=(write_fd,))
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return cls(popen, read_fd, key)

    # -- running a task ----------------------------------------------------------------

    def run(self, message: dict[str, Any], timeout: float | None) -> Reply:
        """Send one task and wait for its record, at most ``timeout`` seconds.

        ``timeout`` counts from the callable's start; loading the task (the
        imports of a fresh worker) may take ``max(timeout, LOAD_LIMIT_S)`` before it.
        Returns ``Reply(None)`` when the worker died (or was killed) first,
        ``Reply(None, timed_out=True)`` when the time ran out (the worker is then
        marked broken; kill it). Cost: pickling ``message`` plus three pipe trips.
        """
        self.tasks_run += 1
        stdin = self.popen.stdin
        assert stdin is not None
        try:
            stdin.write(_frame(message))
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.broken = True
            return Reply(None)
        # Loading the task (its imports) has its own, looser limit.
        first = self._receive(None if timeout is None else max(timeout, LOAD_LIMIT_S))
        if isinstance(first, Reply):
            return first
        if first.get("kind") != STARTED:  # the task could not be loaded: its record
            self.last_used = time.monotonic()
            return Reply(first)
        second = self._receive(timeout)
        if isinstance(second, Reply):
            return second
        self.last_used = time.monotonic()
        return Reply(second)

    def _receive(self, timeout: float | None) -> dict[str, Any] | Reply:
        poller = select.poll()
        poller.register(self._result_fd, select.POLLIN | select.POLLHUP)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                self.broken = True
                return Reply(None, timed_out=True)
            try:
                ready = poller.poll(None if left is None else max(1, int(left * 1000) + 1))
            except InterruptedError:
                continue
            if ready:
                break
        try:
            message = read_message(self._result_fd)
        except Exception:  # a cut-off or corrupt frame: the worker died while writing
            message = None
        if message is None:
            self.broken = True
            return Reply(None)
        return dict(message)

    def late_record(self) -> dict[str, Any] | None:
        """A record the worker wrote before it was killed (call after :meth:`kill`), else None.

        The worker's end of the pipe is closed once its group is dead, so this never blocks.
        """
        while True:
            poller = select.poll()
            poller.register(self._result_fd, select.POLLIN | select.POLLHUP)
            if not poller.poll(0):
                return None
            try:
                message = read_message(self._result_fd)
            except Exception:
                return None
            if message is None or message.get("kind") != STARTED:
                return None if message is None else dict(message)

    # -- ending ------------------------------------------------------------------------

    def has_members(self) -> bool:
        """True while a live process remains in the worker's group (False once reaped)."""
        with self._lock:
            return not self._reaped and bool(group_members(self.pid))

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the worker's group unless it was reaped already."""
        with self._lock:
            if not self._reaped:
                _signal_group(self.pid, signum)

    def kill(self, grace_s: float) -> None:
        """Terminate the whole group (SIGTERM, SIGKILL after ``grace_s``); no-op once reaped."""
        self.broken = True
        terminate_workers([self], grace_s=grace_s)

    def quit(self) -> None:
        """Ask an idle worker to run its exit hooks and leave (see :meth:`reap`)."""
        self.broken = True
        stdin = self.popen.stdin
        with contextlib.suppress(OSError, ValueError):
            if stdin is not None:
                stdin.write(_frame({"kind": "quit"}))
                stdin.flush()

    def reap(self, grace_s: float) -> int:
        """Wait up to ``grace_s`` for the worker to leave, end what is left of its group,
        collect its exit status and close its pipes. Returns the exit status."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            _wait_no_reap(self.pid, grace_s)
        # Its own helpers (resource trackers) leave once the worker is gone.
        deadline = time.monotonic() + min(grace_s, 1.0)
        while self.has_members() and time.monotonic() < deadline:
            time.sleep(0.01)
        terminate_workers([self], grace_s=grace_s)
        with self._lock:
            returncode = self.popen.wait()
            self._reaped = True
        for closing in (self.popen.stdin,):
            with contextlib.suppress(OSError):
                if closing is not None:
                    closing.close()
        with contextlib.suppress(OSError):
            os.close(self._result_fd)
        return returncode

    def stop(self, grace_s: float) -> int:
        """Quit (if still usable) and reap: the whole group is gone afterwards."""
        if not self.broken:
            self.quit()
        else:
            self.signal_group(signal.SIGTERM)
        return self.reap(grace_s)


def _frame(message: dict[str, Any]) -> bytes:
    import pickle

    from hwaware_plugins.executors._payload import HEADER

    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def _wait_no_reap(pid: int, timeout: float) -> None:
    """Block until ``pid`` (a child) exits, leaving it unreaped; raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is not None:
            return
        if time.monotonic() >= deadline:
            raise subprocess.TimeoutExpired([str(pid)], timeout)
        time.sleep(0.005)


__all__ = ["CHILD_MODULE", "PooledWorker", "Reply", "WorkerKey"]
