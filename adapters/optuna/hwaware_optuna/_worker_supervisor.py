"""The supervisor: one pinned worker process per leased device slot, kept running.

It leases every slot it can from the node's :class:`DevicePool`, starts a
worker process per slot with the lease's pinning environment (so
``CUDA_VISIBLE_DEVICES`` is set before anything imports CUDA) and gives each
worker one trial at a time: it makes the trial RUNNING itself (a queued one
the slot's device can hold, else a new one while the
:class:`~hwaware_optuna._worker_budget.Budget` allows) and stamps it with the
worker's pid before the worker hears of it. So:

- a worker that dies has its trial failed (``crash: ...``; ``crash: worker
  died before the objective started: ...`` while the sampler placed it), its
  lease released, and is replaced;
- while the sampler places a trial, the supervisor keeps its heartbeat (on
  storages that have one; optuna's own starts with the objective), so a node
  that dies meanwhile has that trial failed by the other nodes too;
- a trial whose objective runs past ``trial_timeout`` (counted from the
  objective's start, not the worker's warm-up) has its worker's process group
  killed and is failed (``timeout: ...``);
- with ``max_retries``, crashed and timed-out trials are queued again with the
  same parameters, and out-of-memory ones with a larger memory need that only
  a device with more memory takes (:mod:`hwaware_optuna._worker_oom`);
- on start, with a journal-file or SQLite storage, RUNNING trials of this node
  whose worker died with an earlier run are failed (and retried);
- an exception leaving :meth:`Supervisor.run` (Ctrl-C, SIGTERM turned into
  ``SystemExit``) kills every worker's process group and fails their trials
  (``interrupted``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from hwaware_optuna._worker_budget import Budget
from hwaware_optuna._worker_dealer import TrialDealer
from hwaware_optuna._worker_oom import replacing
from hwaware_optuna._worker_protocol import FAIL_REASON, OOM_ACTION, STOP, go
from hwaware_optuna._worker_slots import SpecFor, WorkerSlot, read_ready, spawn_worker
from hwaware_optuna._worker_trials import (
    enqueue_retry,
    fail_trial,
    fail_trials_of_dead_workers,
    heartbeat_interval,
    record_heartbeat,
    single_node_storage,
)
from hwaware_plugins.errors import ConfigError, HwawareError
from hwaware_plugins.executors._outcome import describe_exit
from hwaware_plugins.executors._process import terminate_workers
from hwaware_plugins.executors._timeouts import TrialTimeout, timeout_for
from hwaware_plugins.hardware._pool import DevicePool

_log = logging.getLogger("hwaware_optuna")

MAX_START_FAILURES = 3
"""Workers dying in a row before asking for a trial: then the run stops with an error."""
_POLL_S = 0.05
_IDLE_RECHECK_S = 0.2
"""How often a worker waiting for a trial it can take looks at the queue again."""


@dataclass
class Summary:
    """What a supervisor run did: trials started, how many ended badly, and how many
    trials of dead workers of an earlier run it failed (``recovered``)."""

    started: int = 0
    crashed: int = 0
    timed_out: int = 0
    retried: int = 0
    workers_started: int = 0
    recovered: int = 0
    ended: int = 0


class Supervisor:
    """Runs per-slot worker processes until the budget, the deadline or an exception ends it.

    Not thread-safe: call :meth:`run` once, from one thread.

    :param study: the study (its storage is shared with the workers).
    :param pool: the node's device pool; one lease per worker, held by this process.
    :param spec_for: builds each worker's :class:`WorkerSpec`.
    :param budget: decides whether another non-retry trial may start.
    :param node: this node's name, stamped on every trial (``hwaware:node``).
    :param max_workers: worker processes at once (at most the pool's free slots).
    :param timeout: seconds after which no new trial starts (``None``: none).
    :param trial_timeout: seconds an objective may run before its worker is killed, or
        per subspace (:func:`hwaware_plugins.executors.timeout_for`).
    :param max_retries: queued retries per trial after a crash, an OOM or a timeout.
    :param kill_grace_s: SIGTERM-to-SIGKILL delay when killing a worker's group.
    :param python: the interpreter of the workers.
    :param on_trial_end: called with the :class:`Summary` each time one of this
        supervisor's trials ends (finished by its worker, crashed or timed out),
        from the thread running :meth:`run`; for progress displays.
    """

    def __init__(
        self,
        study: optuna.Study,
        *,
        pool: DevicePool,
        spec_for: SpecFor,
        budget: Budget,
        node: str,
        max_workers: int,
        timeout: float | None,
        trial_timeout: TrialTimeout,
        max_retries: int,
        kill_grace_s: float = 3.0,
        python: str = sys.executable,
        on_trial_end: Callable[[Summary], None] | None = None,
    ) -> None:
        self.study = study
        self.pool = pool
        self.spec_for = spec_for
        self.budget = budget
        self.node = node
        self.max_workers = max_workers
        self.timeout = timeout
        self.trial_timeout = trial_timeout
        self.max_retries = max_retries
        self.kill_grace_s = kill_grace_s
        self.python = python
        self.on_trial_end = on_trial_end
        self.summary = Summary()
        self._slots: list[WorkerSlot] = []
        self._serial = 0
        self._start_failures = 0
        self._beat_s = heartbeat_interval(study._storage)
        self.dealer = TrialDealer(study, pool=pool, budget=budget, node=node,
                                  max_retries=max_retries)

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> Summary:
        """Supervise until done; returns the :class:`Summary`. Blocks.

        :raises ConfigError: a worker could not join the study or load the objective.
        :raises HwawareError: workers keep dying before their first trial.
        """
        import tempfile

        if self.timeout is not None:
            self.dealer.deadline = time.monotonic() + self.timeout
        self._recover()
        with tempfile.TemporaryDirectory(prefix="hwaware-workers-") as folder:
            try:
                self._loop(folder)
            except BaseException:
                self._interrupt()
                raise
            finally:
                self._close_all()
        return self.summary

    def _loop(self, folder: str) -> None:
        while True:
            self._fill(folder)
            if not self._slots:
                if not self.dealer.work_left(running=False):
                    return
                time.sleep(_POLL_S)  # every slot is leased elsewhere: wait for one
                continue
            for slot in read_ready(self._slots, _POLL_S):
                self._drain(slot)
            for slot in list(self._slots):
                if slot.process.wait(0):
                    self._finish(slot)
            for slot in list(self._slots):
                if slot.idle and time.monotonic() >= slot.next_offer:
                    self._offer(slot)
            self._beat_placing()
            self._enforce_trial_timeout()

    def _fill(self, folder: str) -> None:
        """Start workers while trials may start; with only queued retries left, lease only
        devices that can hold one that no current worker's device can."""
        while len(self._slots) < self.max_workers:
            device_filter = self.dealer.lease_filter([s.lease.device for s in self._slots])
            if device_filter is None:
                return
            lease = self.pool.try_acquire(label=f"{self.study.study_name}#worker",
                                          device_filter=device_filter)
            if lease is None:
                return
            self._serial += 1
            try:
                slot = spawn_worker(lease, self._serial, folder, self.spec_for, self.python)
            except BaseException:
                lease.release()
                raise
            self._slots.append(slot)
            self.summary.workers_started += 1

    def _running(self) -> bool:
        return any(slot.trial_id is not None for slot in self._slots)

    def _offer(self, slot: WorkerSlot) -> None:
        """Give an idle worker a trial its device can hold; stop it when none can come.

        A worker with nothing to take waits while running trials may still be
        retried, else it stops (freeing its slot for a device that can take
        what is queued).
        """
        trial = self.dealer.deal(slot.process.pid, slot.lease.device)
        if trial is None:
            if self.dealer.open() and self.max_retries > 0 and self._running():
                slot.next_offer = time.monotonic() + _IDLE_RECHECK_S
                return
            slot.idle = False
            slot.stopping = True
            slot.send(STOP)
            return
        slot.idle = False
        slot.trial_id, slot.trial_number = trial._trial_id, trial.number
        slot.objective_started = None
        self.summary.started += 1
        slot.last_beat = 0.0
        self._beat_placing()
        slot.send(go(trial._trial_id))

    def _beat_placing(self) -> None:
        """Record a heartbeat for trials still being placed, once per heartbeat interval.

        Optuna starts a trial's heartbeat with its objective; until then this
        one stands in, so a trial of a node that died while placing it goes
        stale and other nodes' ``fail_stale_trials`` fail it. Cost: one storage
        write per placing trial per interval (none without a heartbeat).
        """
        if self._beat_s is None:
            return
        now = time.monotonic()
        for slot in self._slots:
            if (slot.trial_id is not None and slot.objective_started is None
                    and now - slot.last_beat >= self._beat_s):
                record_heartbeat(self.study._storage, slot.trial_id)
                slot.last_beat = now

    # -- messages ------------------------------------------------------------------------

    def _drain(self, slot: WorkerSlot) -> None:
        for message in slot.drain():
            self._handle(slot, message)

    def _handle(self, slot: WorkerSlot, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "ready":
            slot.said_ready = True
            self._start_failures = 0
            slot.idle = True
            slot.next_offer = 0.0
        elif kind == "objective":
            slot.objective_started = time.monotonic()
            subspace = message.get("subspace")
            slot.timeout_s = timeout_for(self.trial_timeout,
                                         subspace if isinstance(subspace, str) else None)
        elif kind == "end":
            if message.get("state") == "FAIL" and slot.trial_id is not None:
                self._retry_if_out_of_memory(slot, slot.trial_id)
            if slot.trial_id is not None:
                self._ended()
            slot.trial_id = slot.trial_number = slot.objective_started = None
        elif kind == "error":
            slot.error = str(message.get("message"))

    # -- endings -------------------------------------------------------------------------

    def _finish(self, slot: WorkerSlot) -> None:
        """A worker exited: read its last words, reap its group, fail its trial, free the slot."""
        self._drain(slot)
        code = slot.process.reap(self.kill_grace_s)
        self._forget(slot)
        if slot.error is not None:
            raise ConfigError(slot.error)
        if slot.trial_id is not None:
            self.summary.crashed += 1
            how = describe_exit(code)
            if slot.objective_started is None:
                how = f"worker died before the objective started: {how}"
            self._fail(slot, f"crash: {how}", retry=True)
            self._ended()
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
                    "hwaware_optuna._worker' errors visible on stderr above"
                )

    def _fail(self, slot: WorkerSlot, reason: str, *, retry: bool) -> None:
        if slot.trial_id is None:
            return
        failed = fail_trial(self.study._storage, slot.trial_id, reason)
        slot.trial_id = None
        if failed is not None and retry:
            self._queue_retry(failed)

    def _queue_retry(self, failed: FrozenTrial) -> None:
        if self.max_retries > 0 and enqueue_retry(self.study, failed, self.max_retries):
            self.summary.retried += 1

    def _retry_if_out_of_memory(self, slot: WorkerSlot, trial_id: int) -> None:
        """An out-of-memory trial is queued again when its worker planned a bigger device."""
        failed = self.study._storage.get_trial(trial_id)
        if not str(failed.user_attrs.get(FAIL_REASON, "")).startswith("oom:"):
            return
        action = failed.user_attrs.get(OOM_ACTION, "not re-placed: no plan recorded")
        _log.warning("trial %d ran out of memory on %s; %s", failed.number,
                     slot.lease.device.id, action)
        if replacing(failed):
            self._queue_retry(failed)

    def _recover(self) -> None:
        """Fail (and retry) RUNNING trials of this node whose worker died with an earlier run."""
        if not single_node_storage(self.study._storage):
            return
        for failed in fail_trials_of_dead_workers(self.study, self.node):
            self.summary.recovered += 1
            _log.warning("trial %d was left RUNNING by a dead worker; failed it (%s)",
                         failed.number, failed.user_attrs.get(FAIL_REASON))
            self._queue_retry(failed)

    def _enforce_trial_timeout(self) -> None:
        if self.trial_timeout is None:
            return
        now = time.monotonic()
        late = [
            s for s in self._slots
            if s.trial_id is not None and s.objective_started is not None
            and s.timeout_s is not None and now - s.objective_started > s.timeout_s
        ]
        if not late:
            return
        terminate_workers([slot.process for slot in late], grace_s=self.kill_grace_s)
        for slot in late:
            self.summary.timed_out += 1
            _log.warning("trial %s ran past its trial_timeout of %g s; killed its worker",
                         slot.trial_number, slot.timeout_s)
            self._fail(slot, f"timeout: ran past trial_timeout={slot.timeout_s:g} s",
                       retry=True)
            self._ended()

    def _ended(self) -> None:
        self.summary.ended += 1
        if self.on_trial_end is not None:
            self.on_trial_end(self.summary)

    def _interrupt(self) -> None:
        slots = list(self._slots)
        terminate_workers([slot.process for slot in slots], grace_s=self.kill_grace_s)
        for slot in slots:
            self._drain(slot)
            self._fail(slot, "interrupted", retry=False)

    def _forget(self, slot: WorkerSlot) -> None:
        if slot in self._slots:
            self._slots.remove(slot)
        slot.close()

    def _close_all(self) -> None:
        for slot in list(self._slots):
            slot.process.reap(self.kill_grace_s)
            self._forget(slot)
