"""One supervised worker process per leased slot: start it, talk to it, read what it says."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hwaware_optuna._worker_protocol import WorkerSpec, decode_lines
from hwaware_plugins.executors._payload import HEADER, dumps
from hwaware_plugins.executors._process import WorkerProcess
from hwaware_plugins.hardware._lease import Lease

_log = logging.getLogger("hwaware_optuna")

WORKER_MODULE = "hwaware_optuna._worker"

SpecFor = Callable[[Lease, int, str], WorkerSpec]
"""Builds a worker's spec from its lease, its serial number and its private folder."""


@dataclass(eq=False)
class WorkerSlot:
    """A worker process on its lease, and what the supervisor knows of it.

    ``trial_id`` is the trial it was given (RUNNING, stamped with its pid),
    ``objective_started`` the monotonic time its objective began (``None``
    while the trial is being placed), ``timeout_s`` that trial's time limit
    (from the subspace it was placed in), ``last_beat`` when the supervisor last
    recorded a heartbeat for it while it was placed, ``idle`` True while it
    waits for a trial.
    """

    lease: Lease
    process: WorkerProcess
    fd: int
    serial: int
    buffer: bytearray = field(default_factory=bytearray)
    trial_id: int | None = None
    trial_number: int | None = None
    objective_started: float | None = None
    timeout_s: float | None = None
    last_beat: float = 0.0
    said_ready: bool = False
    idle: bool = False
    next_offer: float = 0.0
    stopping: bool = False
    error: str | None = None

    def send(self, data: bytes) -> None:
        """Write ``data`` to the worker's control channel; a dead worker is ignored here."""
        stdin = self.process.popen.stdin
        if stdin is None:
            return
        try:
            stdin.write(data)
            stdin.flush()
        except (BrokenPipeError, ValueError):  # it died: the exit check will say how
            pass

    def drain(self) -> list[dict[str, Any]]:
        """The complete messages the worker wrote since the last call (never blocks)."""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buffer.extend(chunk)
        return decode_lines(self.buffer)

    def close(self) -> None:
        """Close the message pipe, release the lease, remove the worker's folder."""
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.lease.release()
        self.process.cleanup()


def spawn_worker(
    lease: Lease, serial: int, parent: str, spec_for: SpecFor, python: str = sys.executable
) -> WorkerSlot:
    """Start worker number ``serial`` on ``lease`` in a new session and send it its spec.

    Cost: one interpreter start; the worker's imports and study load follow in
    the background (about a second).
    """
    folder = os.path.join(parent, f"worker-{serial}")
    os.makedirs(folder)
    spec = spec_for(lease, serial, folder)
    envelope = pickle.dumps({"sys_path": list(sys.path), "spec": dumps(spec)})
    read_fd, write_fd = os.pipe()
    argv = [python, "-m", WORKER_MODULE, str(write_fd)]
    if lease.cpu_affinity:
        argv.append(",".join(str(core) for core in lease.cpu_affinity))
    try:
        popen = subprocess.Popen(
            argv, stdin=subprocess.PIPE, env=lease.env(), start_new_session=True,
            pass_fds=(write_fd,),
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    os.set_blocking(read_fd, False)
    slot = WorkerSlot(lease, WorkerProcess(popen, folder), read_fd, serial)
    slot.send(HEADER.pack(len(envelope)) + envelope)
    _log.debug("worker %d (pid %d) on %s", serial, popen.pid, lease.slot_id)
    return slot


def read_ready(slots: Sequence[WorkerSlot], wait_s: float) -> list[WorkerSlot]:
    """The slots whose worker wrote something, waiting up to ``wait_s`` seconds for one."""
    readable, _, _ = select.select([slot.fd for slot in slots], [], [], wait_s)
    return [slot for slot in slots if slot.fd in readable]
