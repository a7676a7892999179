"""One persistent worker process, seen from the executor: start, run a task, retire.

The worker (:mod:`hwaware_plugins.executors._child`) is started leading a
process group of its own, so its pid is also the id of a group holding
everything it spawns; killing the worker always means killing that group. The worker is
reaped only after its group was emptied: while unreaped its pid cannot be
reused, so signalling the group can never hit a stranger.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from hwaware_plugins import _forksafe as _fds
from hwaware_plugins.executors._child import STARTED, frame, read_message
from hwaware_plugins.executors._fork import fork_worker
from hwaware_plugins.executors._process import (
    _signal_group,
    exited_unreaped,
    group_members,
    terminate_workers,
)

CHILD_MODULE = "hwaware_plugins.executors._child"

FORK_GATE_TIMEOUT_S = 2.0
"""Seconds a fork waits for the databases gates vouch for to go idle before the
worker is spawned instead (see :func:`~hwaware_plugins._forksafe.databases_idle`)."""

_log = logging.getLogger("hwaware_plugins.executors")

LOAD_LIMIT_S = 120.0
"""Seconds loading a task (unpickling it: the imports of a fresh worker) may take at
least, when the task has a time limit; a longer limit applies as it is."""

WorkerKey = tuple[str, tuple[int, ...] | None, tuple[tuple[str, str], ...]]
"""What a worker is bound to: device id, CPU cores and the pinning environment."""


class WorkerHandle(Protocol):
    """What :class:`PooledWorker` needs of its process: a ``subprocess.Popen`` (spawned)
    or a :class:`~hwaware_plugins.executors._fork.ForkedProcess`."""

    pid: int
    stdin: IO[bytes] | None

    def wait(self) -> int:
        """Block until the process exits, reap it and return its exit status."""


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

    def __init__(self, popen: WorkerHandle, result_fd: int, key: WorkerKey,
                 start_method: str = "spawn") -> None:
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
        self.start_method = start_method
        self._returncode: int | None = None

    @classmethod
    def start(
        cls, *, python: str, env: Mapping[str, str], cpu_affinity: Sequence[int] | None,
        key: WorkerKey, start_method: str = "spawn",
    ) -> PooledWorker:
        """Start a worker leading a process group of its own, with ``env`` and ``cpu_affinity``.

        ``start_method="fork"`` forks this process (see
        :mod:`~hwaware_plugins.executors._fork`): a few ms, and the modules
        imported here are already there. ``"spawn"`` costs one interpreter start
        and the import of the worker module (about 50-100 ms); the task's own
        imports come with its first task.
        """
        if start_method == "fork":
            # A database a gate vouches for must be idle at the fork; one that stays
            # busy (or whose gate cannot vouch any more) means a spawn instead.
            with _fds.databases_idle(FORK_GATE_TIMEOUT_S) as idle:
                if idle:
                    handle, result_fd = fork_worker(env=env, cpu_affinity=cpu_affinity)
                    return cls(handle, result_fd, key, start_method="fork")
            _log.info("a database in use stayed busy or cannot be vouched for; "
                      "spawning the worker instead of forking it")
        argv = [python, "-m", CHILD_MODULE]
        with _fds.FD_LOCK:  # no fork may copy these ends before they are registered
            read_fd, write_fd = os.pipe()
            argv.append(str(write_fd))
            if cpu_affinity:
                argv.append(",".join(str(core) for core in cpu_affinity))
            try:
                popen = subprocess.Popen(argv, stdin=subprocess.PIPE, env=dict(env),
                                         process_group=0, pass_fds=(write_fd,))
            except BaseException:
                os.close(read_fd)
                raise
            finally:
                os.close(write_fd)
            assert popen.stdin is not None
            _fds.track(read_fd, popen.stdin.fileno())
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
            stdin.write(frame(message))
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
        """Ask an idle worker to run its exit hooks and leave (see :meth:`stop`)."""
        self.broken = True
        stdin = self.popen.stdin
        with contextlib.suppress(OSError, ValueError):
            if stdin is not None:
                stdin.write(frame({"kind": "quit"}))
                stdin.flush()

    def exited(self) -> bool:
        """True once the worker process has exited (it is left unreaped)."""
        with self._lock:
            return self._reaped or exited_unreaped(self.pid)

    def collect(self) -> int:
        """Reap the worker (wait for it if it has not exited) and close its pipe ends,
        once; return its exit status. Call after its group was ended."""
        with self._lock:
            if self._returncode is not None:
                return self._returncode
            returncode = self.popen.wait()
            self._reaped = True
            self._returncode = returncode
        stdin = self.popen.stdin
        if stdin is not None:
            with _fds.FD_LOCK:
                with contextlib.suppress(OSError, ValueError):
                    _fds.forget(stdin.fileno())
                with contextlib.suppress(OSError, ValueError):
                    stdin.close()
        _fds.close_tracked(self._result_fd)
        return returncode

    def stop(self, grace_s: float) -> int:
        """Quit (if still usable) and reap: the whole group is gone afterwards."""
        stop_together([self], grace_s=grace_s)
        return self.collect()


def reap_together(workers: Sequence[PooledWorker], *, grace_s: float) -> None:
    """Wait for ``workers`` to leave, all at once, then end what is left of their groups.

    Waits up to ``grace_s`` in total for the processes to exit (not per worker),
    then up to ``min(grace_s, 1)`` for their helpers (resource trackers) to leave
    on their own, then terminates the remaining groups together. The workers
    stay unreaped (their pids cannot be reused); :meth:`PooledWorker.stop` and
    :func:`stop_together` collect them. Cost: a process-table scan per worker
    every 10 ms while helpers remain.
    """
    deadline = time.monotonic() + grace_s
    waiting = list(workers)
    while waiting:
        waiting = [worker for worker in waiting if not worker.exited()]
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.005)
    deadline = time.monotonic() + min(grace_s, 1.0)
    while any(worker.has_members() for worker in workers) and time.monotonic() < deadline:
        time.sleep(0.01)
    terminate_workers(workers, grace_s=grace_s)


def stop_together(workers: Sequence[PooledWorker], *, grace_s: float) -> None:
    """Stop ``workers`` at once: idle ones are asked to quit (exit hooks run), broken
    ones get SIGTERM; then they are reaped together (see :func:`reap_together`).

    Blocks about as long as the slowest worker takes to leave, at most about
    ``2 * grace_s`` + 2 s; nothing of their groups is left running afterwards.
    """
    _ask_to_leave(workers)
    _reap_and_collect(workers, grace_s)


def stop_in_background(workers: Sequence[PooledWorker], *, grace_s: float) -> None:
    """Ask ``workers`` to leave as :func:`stop_together` does, and return at once.

    A daemon thread reaps them; :func:`wait_for_leaving_workers` (run at
    interpreter exit) waits for every such thread, so their groups are gone by
    the time the process ends, as a joblib pool in the caller's own process
    would be. Cost: one thread per call while the workers leave.
    """
    if not workers:
        return
    _ask_to_leave(workers)
    thread = threading.Thread(target=_reap_and_collect, args=(list(workers), grace_s),
                              name="hwaware-workers-leaving", daemon=True)
    with _LEAVING_LOCK:
        _LEAVING[:] = [(t, g) for t, g in _LEAVING if t.is_alive()]
        _LEAVING.append((thread, grace_s))
        thread.start()


def wait_for_leaving_workers() -> None:
    """Block until every worker stopped by :func:`stop_in_background` is gone (each
    batch waits at most about ``2 * grace_s`` + 3 s)."""
    with _LEAVING_LOCK:
        leaving = list(_LEAVING)
    for thread, grace_s in leaving:
        thread.join(timeout=2 * grace_s + 3.0)


def _ask_to_leave(workers: Sequence[PooledWorker]) -> None:
    for worker in workers:
        if worker.broken:
            worker.signal_group(signal.SIGTERM)
        else:
            worker.quit()


def _reap_and_collect(workers: Sequence[PooledWorker], grace_s: float) -> None:
    reap_together(workers, grace_s=grace_s)
    for worker in workers:
        worker.collect()


_LEAVING_LOCK = threading.Lock()
_LEAVING: list[tuple[threading.Thread, float]] = []
atexit.register(wait_for_leaving_workers)


__all__ = ["CHILD_MODULE", "PooledWorker", "Reply", "WorkerHandle", "WorkerKey", "reap_together",
           "stop_in_background", "stop_together", "wait_for_leaving_workers"]
