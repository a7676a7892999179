"""What a process forked from a multi-threaded coordinator must not inherit as is.

A worker forked by :class:`~hwaware_plugins.executors.LocalExecutor` gets a copy
of every lock and descriptor of the coordinator.

- Locks: one another thread held at that moment would stay held in the copy for
  ever. :func:`fork_safe` makes ``os.fork`` take a module lock first (so the data
  it guards is consistent in the copy) and release it on both sides afterwards.
- Descriptors: a worker detects a dead coordinator by end-of-file on its command
  pipe, and the coordinator a dead worker by end-of-file on its result pipe; both
  break when a third process holds a copy of a write end. An ``flock`` belongs to
  the open file, so a copy of the lease file's descriptor would keep the lease
  lock held after the coordinator closed its own. Every such descriptor is
  registered here while it is open (:func:`track`); :data:`FD_LOCK` is held while
  one is opened and registered, closed, and while a worker is forked, so the
  registry a fork copies is exact, and the child drops them (:func:`blank_out`).
- Databases: SQLite keeps its locks' state in process memory, so a copy made while
  a thread of the coordinator is inside SQLite cannot safely open that database.
  A framework adapter that sees every use of a database file in this process (an
  Optuna study's SQLAlchemy engine) registers a :class:`DatabaseGate` for it;
  :func:`databases_idle` closes every gate, and the executor forks only then.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

FD_LOCK = threading.RLock()
"""Held across pipe creation, registration, closing and ``os.fork``."""

_OWNED: set[int] = set()


def track(*fds: int) -> None:
    """Register ``fds`` as pipe ends the executor owns (call with :data:`FD_LOCK` held)."""
    with FD_LOCK:
        _OWNED.update(fds)


def close_tracked(fd: int) -> None:
    """Forget ``fd`` and close it, atomically with respect to forks. Never raises OSError."""
    with FD_LOCK:
        _OWNED.discard(fd)
        with contextlib.suppress(OSError):
            os.close(fd)


def forget(fd: int) -> None:
    """Unregister ``fd``; hold :data:`FD_LOCK` until the caller has closed it."""
    with FD_LOCK:
        _OWNED.discard(fd)


def owned() -> frozenset[int]:
    """The registered descriptors now (in a forked child: those of the coordinator)."""
    with FD_LOCK:
        return frozenset(_OWNED)


def blank_out(fds: Iterable[int]) -> None:
    """Point each of ``fds`` at ``/dev/null`` (in a forked child).

    The inherited pipe ends are released, but the descriptor numbers stay taken,
    so an inherited object that still names one (and might close it) can never
    reach a file the child opens later. Cost: one ``dup2`` per descriptor.
    """
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in fds:
            if fd != devnull:
                with contextlib.suppress(OSError):
                    os.dup2(devnull, fd, inheritable=False)
    finally:
        os.close(devnull)
    _OWNED.clear()


LockT = TypeVar("LockT", bound="threading.Lock | threading.RLock")


def fork_safe(lock: LockT) -> LockT:
    """Register ``lock`` to be held across every ``os.fork`` and released after it on
    both sides; return it. Cost: one acquire/release per fork of this process.

    Only for module-level locks whose critical sections never wait for a fork
    (the forking thread takes them last, in reverse registration order).
    """
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=lock.acquire, after_in_parent=lock.release,
                            after_in_child=lock.release)
    return lock


class DatabaseGate:
    """Counts the threads of this process inside one database's client library, and
    holds new ones back while a worker is forked, so that the fork copies the client
    idle (SQLite: no lock held, no mutex taken). Thread-safe.

    The adapter calls :meth:`enter` before each use (a connection checked out or
    opened) and :meth:`leave` after it (checked back in), and :meth:`spoil` when a
    use happens that it cannot bracket (a connection closed outside a checkout):
    from then on the gate never opens for a fork, and workers are spawned.
    Cost: one condition-variable round per use.
    """

    def __init__(self, connections: Callable[[], int] | None = None) -> None:
        """:param connections: how many connections to the database it vouches for are
            open now; more descriptors open on the file than that means another client
            (not vouched for) is in this process. ``None``: any number."""
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._forking = False
        self.spoiled = False
        self.connections = connections

    def enter(self) -> None:
        """Wait while a fork is being made, then count this use."""
        with self._cond:
            while self._forking:
                self._cond.wait()
            self._active += 1

    def leave(self) -> None:
        """End a use counted by :meth:`enter`."""
        with self._cond:
            self._active = max(0, self._active - 1)
            self._cond.notify_all()

    def spoil(self) -> None:
        """Refuse forks from now on (waits for a fork being made to finish)."""
        with self._cond:
            while self._forking:
                self._cond.wait()
            self.spoiled = True

    def hold(self, deadline: float) -> bool:
        """Hold new uses back and wait until none is active, up to ``deadline``
        (``time.monotonic()``); True when held: call :meth:`release` after the fork.
        A wait that runs out spoils the gate (a use that never ended)."""
        with self._cond:
            if self.spoiled:
                return False
            self._forking = True
            while self._active and not self.spoiled:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.spoiled = True
                    break
                self._cond.wait(remaining)
            if self.spoiled:
                self._forking = False
                self._cond.notify_all()
                return False
            return True

    def release(self) -> None:
        """Let uses held back by :meth:`hold` go on."""
        with self._cond:
            self._forking = False
            self._cond.notify_all()


_GATES: dict[str, list[DatabaseGate]] = {}
_GATES_LOCK = threading.Lock()
_FORKING = threading.Lock()  # one fork at a time holds the gates


def register_gate(path: str, gate: DatabaseGate) -> None:
    """Vouch for the database file ``path`` through ``gate`` until :func:`unregister_gate`."""
    with _GATES_LOCK:
        _GATES.setdefault(os.path.realpath(path), []).append(gate)


def unregister_gate(path: str, gate: DatabaseGate) -> None:
    """Withdraw a gate given to :func:`register_gate` (no error if unknown)."""
    key = os.path.realpath(path)
    with _GATES_LOCK:
        gates = _GATES.get(key, [])
        if gate in gates:
            gates.remove(gate)
        if not gates:
            _GATES.pop(key, None)


def vouched_connections() -> dict[str, float]:
    """For each database file unspoiled gates vouch for (real path): how many open
    connections to it they vouch for (``inf`` when a gate does not count them)."""
    with _GATES_LOCK:
        gates = {path: list(path_gates) for path, path_gates in _GATES.items() if path_gates}
    vouched: dict[str, float] = {}
    for path, path_gates in gates.items():
        if any(gate.spoiled for gate in path_gates):
            continue
        vouched[path] = sum(float("inf") if gate.connections is None else gate.connections()
                            for gate in path_gates)
    return vouched


@contextlib.contextmanager
def databases_idle(timeout_s: float) -> Iterator[bool]:
    """Hold every registered gate for the body (a fork); yields False, holding none,
    when one is spoiled or stays busy past ``timeout_s``. Without gates: True."""
    with _FORKING:
        with _GATES_LOCK:
            gates = [gate for path_gates in _GATES.values() for gate in path_gates]
        deadline = time.monotonic() + timeout_s
        held: list[DatabaseGate] = []
        try:
            for gate in gates:
                if not gate.hold(deadline):
                    break
                held.append(gate)
            yield len(held) == len(gates)
        finally:
            for gate in held:
                gate.release()


def forget_gates() -> None:
    """Drop every gate (in a forked child: they guard the coordinator's databases)."""
    _GATES.clear()


__all__ = [
    "FD_LOCK", "DatabaseGate", "blank_out", "close_tracked", "databases_idle", "forget",
    "forget_gates", "fork_safe", "owned", "register_gate", "track",
    "unregister_gate", "vouched_connections",
]  # fmt: skip
