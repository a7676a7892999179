"""Module locks registered with fork_safe are usable in a forked child; database gates
hold new uses back while a fork is made."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from hwaware_plugins._forksafe import (
    DatabaseGate,
    databases_idle,
    fork_safe,
    register_gate,
    unregister_gate,
    vouched_connections,
)


def test_a_lock_held_by_another_thread_at_fork_is_free_in_the_child() -> None:
    lock = fork_safe(threading.Lock())
    held = threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            time.sleep(0.2)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    pid = os.fork()  # waits for the lock: the other thread releases it
    if pid == 0:  # pragma: no cover - the child
        os._exit(0 if lock.acquire(timeout=2) else 1)
    thread.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert lock.acquire(timeout=2)  # and free in the parent too
    lock.release()


def test_a_gate_holds_new_uses_back_until_the_fork_is_made() -> None:
    gate = DatabaseGate()
    gate.enter()
    in_use = threading.Thread(target=lambda: (time.sleep(0.1), gate.leave()))
    in_use.start()
    order: list[str] = []
    assert gate.hold(time.monotonic() + 5)  # waits for the use under way to end
    order.append("held")
    newcomer = threading.Thread(target=lambda: (gate.enter(), order.append("entered")))
    newcomer.start()
    time.sleep(0.05)
    order.append("forked")
    gate.release()
    newcomer.join(timeout=5)
    in_use.join()
    assert order == ["held", "forked", "entered"]
    assert not gate.spoiled


def test_a_use_that_never_ends_spoils_the_gate_instead_of_blocking_forks() -> None:
    gate = DatabaseGate()
    gate.enter()
    started = time.monotonic()
    assert not gate.hold(time.monotonic() + 0.1)
    assert 0.05 < time.monotonic() - started < 2
    assert gate.spoiled
    gate.enter()  # uses go on as before
    gate.leave()
    assert not gate.hold(time.monotonic() + 5)  # and never vouch again


def test_databases_idle_vouches_only_while_every_registered_gate_is_held(tmp_path: Path) -> None:
    path = str(tmp_path / "study.db")
    with databases_idle(0.1) as idle:
        assert idle  # no gate: nothing to wait for
    busy, idle_gate = DatabaseGate(), DatabaseGate()
    register_gate(path, idle_gate)
    try:
        assert set(vouched_connections()) == {os.path.realpath(path)}
        with databases_idle(1.0) as idle:
            assert idle
        register_gate(path, busy)
        busy.enter()
        with databases_idle(0.1) as idle:
            assert not idle
        assert set(vouched_connections()) == set()  # the spoiled gate no longer vouches
        idle_gate.enter()  # the gate held and released again is open for uses
        idle_gate.leave()
    finally:
        unregister_gate(path, busy)
        unregister_gate(path, idle_gate)
    assert set(vouched_connections()) == set()
