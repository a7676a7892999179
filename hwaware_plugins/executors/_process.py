"""A process leading its own process group: wait, terminate, reap; ending groups.

The worker is started with ``start_new_session=True``, so its pid is also the
id of a process group holding everything it spawns. The worker is reaped only
after its group was terminated: while unreaped (a zombie at worst) its pid
cannot be reused, so signalling the group can never hit a stranger.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from typing import Protocol

import psutil

_POLL_S = 0.02


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``.

    Cost: one ``getpgid`` call per process on the host (a few ms for thousands).
    """
    members: list[int] = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) != pgid:
                continue
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                continue
        except (ProcessLookupError, psutil.Error):
            continue
        members.append(pid)
    return members


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)



def exited_unreaped(pid: int) -> bool:
    """True once the child ``pid`` has exited (or is not our child); it is left unreaped,
    so its pid cannot be reused. Cost: one ``waitid`` call."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None

class GroupLeader(Protocol):
    """A worker process leading its own process group (``WorkerProcess``, ``PooledWorker``)."""

    pid: int

    def has_members(self) -> bool:
        """True while a live process remains in the group."""

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the whole group."""


def terminate_workers(workers: Iterable[GroupLeader], *, grace_s: float) -> list[int]:
    """Stop every process in each worker's group: SIGTERM, then SIGKILL after ``grace_s``.

    All groups are signalled at once, so the wait is ``grace_s`` in total, not
    per worker. Returns the pids of the workers whose group needed SIGKILL;
    returns at once when the groups are already empty.
    """
    remaining = [worker for worker in workers if worker.has_members()]
    for worker in remaining:
        worker.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while remaining and time.monotonic() < deadline:
        time.sleep(_POLL_S)
        remaining = [worker for worker in remaining if worker.has_members()]
    for worker in remaining:
        worker.signal_group(signal.SIGKILL)
    killed = [worker.pid for worker in remaining]
    deadline = time.monotonic() + 2.0
    while remaining and time.monotonic() < deadline:
        time.sleep(_POLL_S)
        remaining = [worker for worker in remaining if worker.has_members()]
    return killed


class WorkerProcess:
    """A started process leading its own group (``start_new_session=True``): wait, terminate, reap.

    The executor's own workers are :class:`~hwaware_plugins.executors._worker.PooledWorker`;
    this class serves callers that start a process themselves and hand in its ``Popen``.

    Thread-safety: :meth:`terminate` may be called from any thread (the
    executor's :meth:`~LocalExecutor.interrupt`) while the owning thread is in
    :meth:`wait`; :meth:`reap` is called once, by the owning thread.
    """

    def __init__(self, popen: subprocess.Popen[bytes], workdir: str) -> None:
        self.popen = popen
        self.pid = popen.pid
        self._workdir = workdir
        # Re-entrant: a SIGTERM handler may interrupt() while the main thread holds it.
        self._lock = threading.RLock()
        self._reaped = False

    def wait(self, timeout: float | None) -> bool:
        """Block until the worker exits (left unreaped) or ``timeout`` passes; True if it exited."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pidfd = self._open_pidfd()
        try:
            while not self._exited():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                if pidfd is not None:
                    poller = select.poll()
                    poller.register(pidfd, select.POLLIN)
                    poller.poll(None if left is None else max(1, int(left * 1000)))
                else:
                    time.sleep(_POLL_S if left is None else min(_POLL_S, left))
            return True
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _open_pidfd(self) -> int | None:
        opener = getattr(os, "pidfd_open", None)
        if opener is None:
            return None
        try:
            fd: int = opener(self.pid)
        except OSError:
            return None
        return fd

    def _exited(self) -> bool:
        with self._lock:
            return self._reaped or exited_unreaped(self.pid)

    def has_members(self) -> bool:
        """True while a live process remains in the worker's group (False once reaped)."""
        with self._lock:
            return not self._reaped and bool(group_members(self.pid))

    def terminate(self, grace_s: float) -> bool:
        """Terminate the worker's whole group (no-op once reaped); True if SIGKILL was needed."""
        return bool(terminate_workers([self], grace_s=grace_s))

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the worker's group unless it was reaped already."""
        with self._lock:
            if not self._reaped:
                _signal_group(self.pid, signum)

    def reap(self, grace_s: float) -> int:
        """Terminate what is left of the group, collect the exit status, clean up.

        Call after :meth:`wait` returned True (or after :meth:`terminate`).
        """
        self.terminate(grace_s)
        with self._lock:
            returncode = self.popen.wait()
            self._reaped = True
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        return returncode

    def cleanup(self) -> None:
        """Remove the worker's temporary folder."""
        shutil.rmtree(self._workdir, ignore_errors=True)
