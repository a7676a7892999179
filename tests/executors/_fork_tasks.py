"""Tasks the fork-start tests run in workers (importable by a spawned worker too)."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import time
from typing import Any


def identity(sleep_s: float = 0.0) -> dict[str, Any]:
    """What a worker looks like from inside: process group, session, env, affinity, signals."""
    time.sleep(sleep_s)
    return {
        "pid": os.getpid(), "pgid": os.getpgrp(), "sid": os.getsid(0),
        "env": dict(os.environ), "affinity": sorted(os.sched_getaffinity(0)),
        "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        "sigint_default": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
        "sigttou_ignored": signal.getsignal(signal.SIGTTOU) == signal.SIG_IGN,
        "stdin_empty": sys.stdin.read() == "",
    }


def fake_torch_inherited() -> bool:
    """True when the coordinator's fake ``torch`` module is in this worker (it was forked)."""
    return bool(getattr(sys.modules.get("torch"), "HWAWARE_FAKE", False))


def register_exit_note(path: str) -> int:
    """Register an exit hook appending ``worker <pid>`` to ``path``; return this pid."""
    def note() -> None:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"worker {os.getpid()}\n")

    atexit.register(note)
    return os.getpid()


def torch_threads() -> int:
    """The size of torch's intra-op thread pool in this worker."""
    import torch

    return int(torch.get_num_threads())
