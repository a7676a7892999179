"""Letting the executor fork workers while the coordinator has an SQLite study open.

A worker forked while a thread of the coordinator is inside SQLite inherits a copy
of SQLite's in-process lock state that is wrong for it, and breaks when it opens
the study's database (``database is locked``, failed commits); so the core
executor spawns workers whenever an SQLite file is open, which costs an ``optimize``
run a fresh interpreter and the objective's imports per worker. While
:func:`sqlite_fork_gate` is active, every use of the study's SQLAlchemy engine in
this process is bracketed by pool events (a connection opened or checked out, then
checked in), a :class:`~hwaware_plugins._forksafe.DatabaseGate` counts them, and
the executor forks only when none is under way. What the events cannot bracket
spoils the gate, and the workers are spawned again:

- a connection closed by the pool (overflow past ``pool_size``, ``pool_recycle``,
  invalidation after an error) happens after its check-in;
- a pool other than SQLAlchemy's default ``QueuePool``, or ``pool_pre_ping`` (a
  query before the check-out event), is never vouched for;
- the gate vouches for the engine's own connections only: another client of the same
  file in this process (a second storage object made from the same URL) means more
  descriptors open on it than the pool holds, and workers are spawned.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from hwaware_plugins._forksafe import DatabaseGate, register_gate, unregister_gate

_SPOILING_EVENTS = ("close", "close_detached", "detach", "invalidate", "soft_invalidate")


def sqlite_engine(storage: object) -> tuple[Any, str] | None:
    """The SQLAlchemy engine and database file of an Optuna RDB storage on an SQLite
    file whose every use the pool events bracket; None for any other storage."""
    storage = getattr(storage, "_backend", storage)  # a study's cache in front of its RDB
    url_text = getattr(storage, "url", None)
    if not isinstance(url_text, str) or not url_text.startswith("sqlite"):
        return None  # checked first: importing SQLAlchemy costs a journal study 0.3 s
    from optuna.storages import RDBStorage
    from sqlalchemy.pool import QueuePool

    if not isinstance(storage, RDBStorage):
        return None
    engine: Any = getattr(storage, "engine", None)
    url = getattr(engine, "url", None)
    if engine is None or url is None or url.get_backend_name() != "sqlite" or not url.database \
            or url.database == ":memory:" or url.database.startswith("file:"):
        return None
    if type(engine.pool) is not QueuePool or storage.engine_kwargs.get("pool_pre_ping"):
        return None
    return engine, os.path.abspath(url.database)


@contextlib.contextmanager
def sqlite_fork_gate(storage: object) -> Iterator[DatabaseGate | None]:
    """While active, vouch for the SQLite database of ``storage`` (see the module doc):
    the executor may fork workers while it is open. Yields the gate (None when the
    storage is not such a database). Cost: a few microseconds per storage call."""
    found = sqlite_engine(storage)
    if found is None:
        yield None
        return
    from sqlalchemy import event

    engine, path = found
    pool = engine.pool
    gate = DatabaseGate(connections=lambda: pool.size() + pool.overflow())
    mark = ("hwaware_fork_gate", id(gate))  # in each connection record's info while in use
    lock = threading.Lock()
    unknown = 0  # connections already in use when the gate was made: their check-ins count
    marked = 0  # connections in use that the gate saw being checked out or opened

    def claim(record: Any) -> None:
        nonlocal marked
        if mark not in record.info:
            gate.enter()  # waits while a fork is being made
            with lock:
                record.info[mark] = True
                marked += 1

    def on_connect(_dialect: object, record: Any, *_args: object) -> None:
        claim(record)  # before a new DBAPI connection is made; its check-out follows

    def on_checkout(_dbapi: object, record: Any, _proxy: object) -> None:
        claim(record)

    def on_checkin(_dbapi: object, record: Any) -> None:
        nonlocal unknown, marked
        with lock:
            mine = record.info.pop(mark, None) is not None
            if mine:
                marked -= 1
            elif unknown > 0:
                unknown -= 1
                mine = True
        if mine:
            gate.leave()
        if pool.overflow() > 0:  # this connection may be closed after check-in
            gate.spoil()

    def on_spoiling(*_args: object) -> None:
        gate.spoil()

    listeners: list[tuple[str, Any]] = [
        ("do_connect", on_connect), ("checkout", on_checkout), ("checkin", on_checkin),
        *((name, on_spoiling) for name in _SPOILING_EVENTS),
    ]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    # Connections checked out before the listeners came are in use unseen: count them
    # until as many unmarked check-ins (a race here errs towards a busy gate, never idle).
    with lock:
        unknown = max(0, pool.checkedout() - marked)
    for _ in range(unknown):
        gate.enter()
    register_gate(path, gate)
    try:
        yield gate
    finally:
        unregister_gate(path, gate)
        for name, listener in listeners:
            event.remove(engine, name, listener)


__all__ = ["sqlite_engine", "sqlite_fork_gate"]
