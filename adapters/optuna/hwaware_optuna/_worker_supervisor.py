"""The supervisor: one pinned worker process per leased device slot, kept running.

It leases every slot it can from the node's :class:`DevicePool`, starts a
worker process per slot with the lease's pinning environment (so
``CUDA_VISIBLE_DEVICES`` is set before anything imports CUDA) and grants each
worker one trial at a time against a :class:`~hwaware_optuna._worker_budget.Budget`.
A worker that dies has its running trial failed (``crash: ...``), its lease
released and is replaced; a trial past ``trial_timeout`` has its worker's
process group killed and is failed (``timeout: ...``); with ``max_retries``,
crashed, out-of-memory and timed-out trials are queued again with the same
parameters and placed afresh by whichever worker takes them; an exception leaving
:meth:`Supervisor.run` (Ctrl-C, SIGTERM turned into ``SystemExit``) kills every
worker's process group and fails their trials (``interrupted``).
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from hwaware_optuna._worker_budget import Budget
from hwaware_optuna._worker_protocol import FAIL_REASON, GO, STOP, WorkerSpec, decode_lines
from hwaware_optuna._worker_trials import enqueue_retry, fail_trial
from hwaware_plugins.errors import ConfigError, HwawareError
from hwaware_plugins.executors._outcome import describe_exit
from hwaware_plugins.executors._payload import HEADER, dumps
from hwaware_plugins.executors._process import WorkerProcess, terminate_workers
from hwaware_plugins.hardware._lease import Lease
from hwaware_plugins.hardware._pool import DevicePool

_log = logging.getLogger("hwaware_optuna")

WORKER_MODULE = "hwaware_optuna._worker"
MAX_START_FAILURES = 3
"""Workers dying in a row before asking for a trial: then the run stops with an error."""
_POLL_S = 0.05

SpecFor = Callable[[Lease, int, str], WorkerSpec]
"""Builds a worker's spec from its lease, its serial number and its private folder."""


@dataclass
class Summary:
    """What a supervisor run did: trials started, and how many ended badly."""

    started: int = 0
    crashed: int = 0
    timed_out: int = 0
    retried: int = 0
    workers_started: int = 0


@dataclass
class _Slot:
    lease: Lease
    process: WorkerProcess
    fd: int
    serial: int
    buffer: bytearray = field(default_factory=bytearray)
    trial_id: int | None = None
    trial_number: int | None = None
    trial_started: float = 0.0
    granted: bool = False
    said_ready: bool = False
    stopping: bool = False
    error: str | None = None


class Supervisor:
    """Runs per-slot worker processes until the budget, the deadline or an exception ends it.

    Not thread-safe: call :meth:`run` once, from one thread.

    :param study: the study (its storage is shared with the workers).
    :param pool: the node's device pool; one lease per worker, held by this process.
    :param spec_for: builds each worker's :class:`WorkerSpec`.
    :param budget: decides whether a worker gets another trial.
    :param max_workers: worker processes at once (at most the pool's free slots).
    :param timeout: seconds after which no new trial starts (``None``: none).
    :param trial_timeout: seconds a trial may run before its worker is killed.
    :param max_retries: queued retries per trial after a crash, an OOM or a timeout.
    :param kill_grace_s: SIGTERM-to-SIGKILL delay when killing a worker's group.
    :param python: the interpreter of the workers.
    """

    def __init__(
        self,
        study: optuna.Study,
        *,
        pool: DevicePool,
        spec_for: SpecFor,
        budget: Budget,
        max_workers: int,
        timeout: float | None,
        trial_timeout: float | None,
        max_retries: int,
        kill_grace_s: float = 3.0,
        python: str = sys.executable,
    ) -> None:
        self.study = study
        self.pool = pool
        self.spec_for = spec_for
        self.budget = budget
        self.max_workers = max_workers
        self.timeout = timeout
        self.trial_timeout = trial_timeout
        self.max_retries = max_retries
        self.kill_grace_s = kill_grace_s
        self.python = python
        self.summary = Summary()
        self._slots: list[_Slot] = []
        self._serial = 0
        self._start_failures = 0
        self._deadline = float("inf")
        self._folder = ""

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> Summary:
        """Supervise until done; returns the :class:`Summary`. Blocks.

        :raises ConfigError: a worker could not join the study or load the objective.
        :raises HwawareError: workers keep dying before their first trial.
        """
        if self.timeout is not None:
            self._deadline = time.monotonic() + self.timeout
        with tempfile.TemporaryDirectory(prefix="hwaware-workers-") as folder:
            self._folder = folder
            try:
                self._loop()
            except BaseException:
                self._interrupt()
                raise
            finally:
                self._close_all()
        return self.summary

    def _loop(self) -> None:
        while True:
            self._fill()
            if not self._slots:
                if not self._wants_more():
                    return
                time.sleep(_POLL_S)  # every slot is leased elsewhere: wait for one
                continue
            self._read(_POLL_S)
            for slot in list(self._slots):
                if slot.process.wait(0):
                    self._finish(slot)
            self._enforce_trial_timeout()

    def _wants_more(self) -> bool:
        return time.monotonic() < self._deadline and self.budget.may_grant(self._in_flight())

    def _in_flight(self) -> int:
        return sum(slot.granted for slot in self._slots)

    def _fill(self) -> None:
        while len(self._slots) < self.max_workers and self._wants_more():
            lease = self.pool.try_acquire(label=f"{self.study.study_name}#worker")
            if lease is None:
                return
            try:
                self._slots.append(self._spawn(lease))
            except BaseException:
                lease.release()
                raise

    def _spawn(self, lease: Lease) -> _Slot:
        self._serial += 1
        folder = os.path.join(self._folder, f"worker-{self._serial}")
        os.makedirs(folder)
        spec = self.spec_for(lease, self._serial, folder)
        envelope = pickle.dumps({"sys_path": list(sys.path), "spec": dumps(spec)})
        read_fd, write_fd = os.pipe()
        argv = [self.python, "-m", WORKER_MODULE, str(write_fd)]
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
        slot = _Slot(lease, WorkerProcess(popen, folder), read_fd, self._serial)
        self._send(slot, HEADER.pack(len(envelope)) + envelope)
        self.summary.workers_started += 1
        _log.debug("worker %d (pid %d) on %s", slot.serial, popen.pid, lease.slot_id)
        return slot

    @staticmethod
    def _send(slot: _Slot, data: bytes) -> None:
        stdin = slot.process.popen.stdin
        if stdin is None:
            return
        try:
            stdin.write(data)
            stdin.flush()
        except (BrokenPipeError, ValueError):  # it died: the exit check will say how
            pass

    # -- messages ------------------------------------------------------------------------

    def _read(self, wait_s: float) -> None:
        fds = [slot.fd for slot in self._slots]
        readable, _, _ = select.select(fds, [], [], wait_s)
        for slot in [s for s in self._slots if s.fd in readable]:
            self._drain(slot)

    def _drain(self, slot: _Slot) -> None:
        while True:
            try:
                chunk = os.read(slot.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            slot.buffer.extend(chunk)
        for message in decode_lines(slot.buffer):
            self._handle(slot, message)

    def _handle(self, slot: _Slot, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "ready":
            slot.said_ready = True
            self._start_failures = 0
            if self._wants_more():
                slot.granted = True
                self._send(slot, GO)
            else:
                slot.stopping = True
                self._send(slot, STOP)
        elif kind == "start":
            slot.granted = False
            slot.trial_id = int(message["trial_id"])
            slot.trial_number = int(message["number"])
            slot.trial_started = time.monotonic()
            self.summary.started += 1
            self.budget.started(bool(message.get("retry")))
        elif kind == "end":
            if message.get("state") == "FAIL" and slot.trial_id is not None:
                self._retry_if_out_of_memory(slot.trial_id)
            slot.trial_id = None
            slot.trial_number = None
        elif kind == "error":
            slot.error = str(message.get("message"))

    # -- endings -------------------------------------------------------------------------

    def _finish(self, slot: _Slot) -> None:
        """A worker exited: read its last words, reap its group, fail its trial, free the slot."""
        self._drain(slot)
        code = slot.process.reap(self.kill_grace_s)
        self._forget(slot)
        if slot.error is not None:
            raise ConfigError(slot.error)
        if slot.trial_id is not None:
            self.summary.crashed += 1
            self._fail(slot, f"crash: {describe_exit(code)}", retry=True)
        if slot.stopping and code == 0:
            return
        _log.warning("worker %d on %s ended: %s; replacing it", slot.serial,
                     slot.lease.slot_id, describe_exit(code))
        if not slot.said_ready:
            self._start_failures += 1
            if self._start_failures >= MAX_START_FAILURES:
                raise HwawareError(
                    f"{MAX_START_FAILURES} worker processes in a row died before their first "
                    f"trial (last: {describe_exit(code)}); run one with 'python -m "
                    f"{WORKER_MODULE}' errors visible on stderr above"
                )

    def _fail(self, slot: _Slot, reason: str, *, retry: bool) -> None:
        if slot.trial_id is None:
            return
        failed = fail_trial(self.study._storage, slot.trial_id, reason)
        slot.trial_id = None
        if failed is None or not retry or self.max_retries <= 0:
            return
        if enqueue_retry(self.study, failed, self.max_retries):
            self.summary.retried += 1
            self.budget.retry_queued()

    def _retry_if_out_of_memory(self, trial_id: int) -> None:
        """A trial whose objective ran out of device memory is queued again (fresh placement)."""
        if self.max_retries <= 0:
            return
        failed = self.study._storage.get_trial(trial_id)
        if not str(failed.user_attrs.get(FAIL_REASON, "")).startswith("oom:"):
            return
        if enqueue_retry(self.study, failed, self.max_retries):
            self.summary.retried += 1
            self.budget.retry_queued()

    def _enforce_trial_timeout(self) -> None:
        if self.trial_timeout is None:
            return
        now = time.monotonic()
        late = [
            s for s in self._slots
            if s.trial_id is not None and now - s.trial_started > self.trial_timeout
        ]
        if not late:
            return
        terminate_workers([slot.process for slot in late], grace_s=self.kill_grace_s)
        for slot in late:
            self.summary.timed_out += 1
            _log.warning("trial %s ran past trial_timeout=%g s; killed its worker",
                         slot.trial_number, self.trial_timeout)
            self._fail(slot, f"timeout: ran past trial_timeout={self.trial_timeout:g} s",
                       retry=True)

    def _interrupt(self) -> None:
        slots = list(self._slots)
        terminate_workers([slot.process for slot in slots], grace_s=self.kill_grace_s)
        for slot in slots:
            self._drain(slot)
            self._fail(slot, "interrupted", retry=False)

    def _forget(self, slot: _Slot) -> None:
        if slot in self._slots:
            self._slots.remove(slot)
        os.close(slot.fd)
        slot.lease.release()
        slot.process.cleanup()

    def _close_all(self) -> None:
        for slot in list(self._slots):
            slot.process.reap(self.kill_grace_s)
            self._forget(slot)
