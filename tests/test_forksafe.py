"""Module locks registered with fork_safe are usable in a forked child."""

from __future__ import annotations

import os
import threading
import time

from hwaware_plugins._forksafe import fork_safe


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
