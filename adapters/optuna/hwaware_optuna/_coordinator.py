"""The coordinator of ``optimize`` and ``hwaware worker``: trials in, executor tasks out.

For each trial it makes the trial RUNNING in the study's storage itself (a
queued one the node's devices can hold, else a new one while the
:class:`~hwaware_optuna._budget.Budget` allows), stamped with this process as
owner, and submits :func:`~hwaware_optuna._trial_task.run_trial` with the
trial's id to a :class:`~hwaware_plugins.executors.LocalExecutor`: the
executor takes the trial's one lease and runs it in a worker process pinned to
the leased slot (see :mod:`hwaware_optuna._trial_task` for the worker's side).
Then, from the task's :class:`~hwaware_plugins.executors.TaskOutcome`:

- a worker that died fails its trial (``crash: ...``; ``crash: worker died
  before the objective started: ...`` while the sampler placed it);
- a trial past its ``trial_timeout`` was failed by its worker, which killed
  itself; with ``max_retries`` crashed and timed-out trials are queued again
  with the same parameters, out-of-memory ones with a larger memory need
  (:mod:`hwaware_optuna._oom`), submitted with that need so the pool leases
  a slot that holds it;
- until a worker takes the trial, the coordinator keeps its heartbeat (on
  storages that have one), so a node that dies meanwhile has it failed by the
  other nodes;
- on start, with a journal-file or SQLite storage, RUNNING trials of this node
  whose owner died with an earlier run are failed (and retried);
- after each trial ends, the ``callbacks`` are called with the study and the
  trial, as ``Study.optimize`` calls its own; ``study.stop()`` from a callback
  or from a worker (the objective, a ``GridSampler`` whose grid is done) starts
  no new trial, and the trials in flight finish;
- an exception leaving :meth:`Coordinator.run` (Ctrl-C, SIGTERM) interrupts
  the executor (every worker's process group dies) and fails the trials in
  flight (``interrupted``), even when a second Ctrl-C cuts the first short.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from hwaware_optuna import _attrs
from hwaware_optuna._budget import Budget
from hwaware_optuna._oom import fits, memory_need, replacing
from hwaware_optuna._sqlite_gate import sqlite_fork_gate
from hwaware_optuna._trial_task import RunSpec, StopAwareStudy, run_trial
from hwaware_optuna._trials import (
    FAIL_REASON,
    OBJECTIVE_STARTED,
    OOM_ACTION,
    RETRY,
    WORKER_PID,
    claim_waiting,
    create_running,
    enqueue_retry,
    fail_trial,
    fail_trials_of_dead_workers,
    heartbeat_interval,
    is_retry,
    single_node_storage,
    worker_stamp,
)
from hwaware_plugins.errors import ConfigError, HwawareError
from hwaware_plugins.executors import OTHER_SUBSPACES, LocalExecutor, TaskOutcome
from hwaware_plugins.executors._config import default_workers
from hwaware_plugins.executors._payload import dumps
from hwaware_plugins.hardware import Device
from hwaware_plugins.hardware._pool import DevicePool

_log = logging.getLogger("hwaware_optuna")
_trial_log = logging.getLogger("optuna.hwaware")
"""Per-trial lines as ``Study.optimize`` writes them: under optuna's logger, so its
handler and ``optuna.logging.set_verbosity`` apply."""

MEMORY_HEADROOM = 1.2
"""With memory packing, a trial asks for this times the largest peak memory reported."""
BACKSTOP_S = 30.0
"""Seconds past the largest ``trial_timeout`` after which the executor kills a task whose
worker could not enforce the limit itself (an objective holding the GIL in C code)."""
MAX_START_FAILURES = 3
"""Workers dying in a row before any objective started: then the run stops with an error."""
FINISHED_ELSEWHERE = "UpdateFinishedTrialError"
"""A worker's error when its trial was ended by another process while it ran."""

_IDLE_BEAT_S = 0.5


@dataclass
class Summary:
    """What a coordinator run did: trials started and ended, how many ended badly, how many
    trials of owners that died with an earlier run it failed (``recovered``), and how many
    distinct worker processes ran its trials (``workers_started``)."""

    started: int = 0
    crashed: int = 0
    timed_out: int = 0
    retried: int = 0
    workers_started: int = 0
    recovered: int = 0
    ended: int = 0
    worker_pids: set[int] = field(default_factory=set, repr=False)


@dataclass
class _InFlight:
    trial_id: int
    number: int
    memory_mb: float | None
    last_beat: float = 0.0


def backstop(trial_timeout: Any) -> float | None:
    """The executor's time limit for a trial task: the largest limit plus :data:`BACKSTOP_S`.

    ``None`` when some trial may run without a limit. Pure.
    """
    if trial_timeout is None:
        return None
    if isinstance(trial_timeout, int | float):
        return float(trial_timeout) + BACKSTOP_S
    if OTHER_SUBSPACES not in trial_timeout:
        return None
    return max(float(v) for v in trial_timeout.values()) + BACKSTOP_S


def _fitting(need_mb: float, memory_fraction: float) -> Callable[[Device], bool]:
    """A device filter keeping the devices whose memory budget holds ``need_mb``."""
    return lambda device: fits(device, need_mb, memory_fraction)


class Coordinator:
    """Runs a study's trials on a :class:`LocalExecutor` until the budget, deadline or an error.

    Not thread-safe: call :meth:`run` once, from one thread.

    :param study: the study (its storage is shared with the worker processes).
    :param pool: the node's device pool; the executor takes one lease per trial from it.
    :param spec: what every trial's worker needs (:class:`RunSpec`).
    :param budget: decides whether another non-retry trial may start.
    :param node: this node's name, stamped on every trial (``hwaware:node``).
    :param timeout: seconds after which no new trial starts (``None``: none).
    :param max_retries: queued retries per trial after a crash, an OOM or a timeout.
    :param memory_mb: declared device memory need of a trial (MiB) for memory-packed
        pools, until reported peaks (``hwaware:peak_memory_mb``) teach a better one.
    :param kill_grace_s: SIGTERM-to-SIGKILL delay when killing a worker's group.
    :param on_trial_end: called with the :class:`Summary` each time one of this
        coordinator's trials ends, from the thread running :meth:`run`.
    :param callbacks: each called as ``callback(study, frozen_trial)`` after
        each of this coordinator's trials ends, from the thread running
        :meth:`run` (one storage read per trial when there are any).
    """

    def __init__(
        self,
        study: optuna.Study,
        *,
        pool: DevicePool,
        spec: RunSpec,
        budget: Budget,
        node: str,
        timeout: float | None,
        max_retries: int,
        memory_mb: float | None = None,
        kill_grace_s: float = 3.0,
        on_trial_end: Callable[[Summary], None] | None = None,
        callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
    ) -> None:
        self.study = study
        self.pool = pool
        self.spec = spec
        self.budget = budget
        self.node = node
        self.timeout = timeout
        self.max_retries = max_retries
        self.memory_mb = memory_mb
        self.kill_grace_s = kill_grace_s
        self.on_trial_end = on_trial_end
        self.callbacks = list(callbacks)
        self.summary = Summary()
        self.max_workers = default_workers(pool)
        self._storage: Any = study._storage  # optuna storage (heartbeat API on some)
        self._study_id = study._study_id
        self._run_id = uuid.uuid4().hex
        self._blob = b""
        self._deadline = float("inf")
        self._peak_mb: float | None = None
        self._start_failures = 0
        self._beat_s = heartbeat_interval(self._storage)
        self._in_flight: dict[Future[TaskOutcome], _InFlight] = {}
        self._backstop_s = backstop(spec.trial_timeout)
        self._stopped = False
        self._callback_study: StopAwareStudy | None = None
        self._unlogged: list[FrozenTrial | int] = []
        self._claimed: FrozenTrial | None = None
        self._stale_checked = time.monotonic()
        self.check_signals: Callable[[], None] = lambda: None
        """Called once per loop turn; raises to end the run (a SIGTERM whose exception
        was lost)."""

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> Summary:
        """Run trials until done; returns the :class:`Summary`. Blocks.

        :raises ConfigError: a worker could not join the study or load the objective.
        :raises HwawareError: workers keep dying before any objective starts.
        """
        executor = LocalExecutor(self.pool, max_workers=self.max_workers, max_oom_retries=0,
                                 kill_grace_s=self.kill_grace_s, framework="optuna")
        # The executor checks its settings and devices (each one pinnable) on first use:
        # here, before any trial is made RUNNING.
        _ = executor.pool
        if self.timeout is not None:
            self._deadline = time.monotonic() + self.timeout
        self._blob = dumps(self.spec)
        self._recover()
        with sqlite_fork_gate(self._storage), executor:
            try:
                self._loop(executor)
            except BaseException:
                try:
                    executor.interrupt()
                finally:  # a second Ctrl-C must not leave the trials RUNNING
                    self._fail_in_flight("interrupted")
                raise
            # Every trial has ended: the workers close their pools (joblib's, the
            # objective's) while the caller goes on; interpreter exit waits for them.
            executor.shutdown(workers_leave="background")
        self.summary.workers_started = len(self.summary.worker_pids)
        return self.summary

    def _loop(self, executor: LocalExecutor) -> None:
        while True:
            self.check_signals()
            self._fill(executor)
            self._log_ended()  # after the freed slots have their next trials
            if not self._in_flight:
                return
            done, _ = wait(list(self._in_flight), timeout=self._wait_s(),
                           return_when=FIRST_COMPLETED)
            for future in done:
                self._finish(future, self._in_flight.pop(future))
            self._beat()
            self._fail_stale()

    def _open(self) -> bool:
        return not self._stopped and time.monotonic() < self._deadline

    def _wait_s(self) -> float:
        return _IDLE_BEAT_S if self._beat_s is None else min(self._beat_s, _IDLE_BEAT_S * 4)

    def _fill(self, executor: LocalExecutor) -> None:
        """Submit trials while slots may take them and trials may start."""
        while len(self._in_flight) < self.max_workers and self._open():
            trial = self._claimed = self._next_trial()
            if trial is None:
                return
            need = memory_need(trial)
            memory = need if need is not None else self._packing_need()
            device_filter = None if need is None else _fitting(need, self.pool.memory_fraction)
            future = executor.submit(
                run_trial, self._run_id, self._blob, trial._trial_id, memory,
                memory_mb=memory, device_filter=device_filter, timeout=self._backstop_s,
                label=f"{self.study.study_name}#{trial.number}",
            )
            # First heartbeat at the end of this loop turn: a node that dies before the
            # worker beats must still leave a heartbeat that goes stale.
            self._in_flight[future] = _InFlight(trial._trial_id, trial.number, memory,
                                                float("-inf"))
            self._claimed = None
            self.summary.started += 1

    def _next_trial(self) -> FrozenTrial | None:
        """A RUNNING trial stamped with this process: a queued one that fits, else a new one."""
        new_ok = self.budget.may_start_new()
        stamp = worker_stamp(os.getpid(), self.node)
        devices = list(self.pool.devices)
        fraction = self.pool.memory_fraction
        trial = claim_waiting(
            self._storage, self._study_id, stamp=stamp,
            accept=lambda t: (new_ok or is_retry(t))
            and any(fits(d, memory_need(t), fraction) for d in devices),
        )
        if trial is None and new_ok:
            trial = create_running(self._storage, self._study_id, stamp)
        if trial is not None:
            self.budget.started(is_retry(trial))
            history = trial.system_attrs.get("retry_history") or []
            if history and trial.user_attrs.get(RETRY) != len(history):
                # a retry queued by optuna's heartbeat callback: mark it as ours are
                self._storage.set_trial_user_attr(trial._trial_id, RETRY, len(history))
        return trial

    def _packing_need(self) -> float | None:
        """A trial's memory need on a memory-packed pool: learned peaks, else the declared one."""
        if self.pool.packing != "memory":
            return None
        if self._peak_mb:
            return self._peak_mb * MEMORY_HEADROOM
        return self.memory_mb

    def _fail_stale(self, *, now_due: bool = False) -> None:
        """On a storage with heartbeats, fail the trials whose heartbeat stopped (their node
        died) once per interval (at once with ``now_due``), as ``Study.optimize`` does
        before each trial; the storage's stale-trial callback queues their retries,
        which :meth:`_next_trial` claims. Cost: one storage query per interval.
        """
        now = time.monotonic()
        if self._beat_s is None or (not now_due and now - self._stale_checked < self._beat_s):
            return
        self._stale_checked = now
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)

    def _beat(self) -> None:
        """Heartbeat of trials in flight, once per interval, until their worker beats itself.

        Cost: one storage write per trial per interval (none without a heartbeat).
        """
        if self._beat_s is None:
            return
        now = time.monotonic()
        for flight in self._in_flight.values():
            if now - flight.last_beat >= self._beat_s:
                self._storage.record_heartbeat(flight.trial_id)
                flight.last_beat = now

    # -- endings ---------------------------------------------------------------------------

    def _finish(self, future: Future[TaskOutcome], flight: _InFlight) -> None:
        outcome = future.result()
        if outcome.state == "complete" and isinstance(outcome.value, dict):
            result: dict[str, Any] = outcome.value
            self.summary.worker_pids.add(int(result.get("pid", 0)))
            self._start_failures = 0
            peak = result.get("peak_memory_mb")
            if isinstance(peak, int | float) and peak > 0:
                self._peak_mb = max(self._peak_mb or 0.0, float(peak))
            if str(result.get("fail_reason") or "").startswith("oom:"):
                self._retry_out_of_memory(flight.trial_id, outcome.device_id)
            if result.get("stop"):
                self._stop(f"study.stop() was called in trial {flight.number}")
        elif outcome.state == "fail" and str(outcome.error).startswith(FINISHED_ELSEWHERE):
            # Another process failed it meanwhile (its heartbeat looked stale, or a
            # resumed run judged its worker dead): the trial's end is theirs.
            _log.warning("trial %d was ended by another process while it ran here (%s)",
                         flight.number, outcome.error)
        elif outcome.state == "fail":
            fail_trial(self._storage, flight.trial_id, f"error: {outcome.error}")
            self._ended()
            raise ConfigError(f"a worker process could not run trial {flight.number}: "
                              f"{outcome.error}")
        else:
            self._worker_lost(flight, outcome)
        self._ended()
        self._report(flight.trial_id)

    def _stop(self, why: str) -> None:
        if not self._stopped:
            _log.info("%s: no new trial starts; the %d in flight finish", why,
                      len(self._in_flight))
        self._stopped = True

    def _report(self, trial_id: int) -> None:
        """Call the callbacks with the ended trial now (a ``study.stop()`` there must come
        before the next trial starts) and queue it for :meth:`_log_ended`.

        Cost: one storage read of the trial with callbacks; none here without.
        """
        ended: FrozenTrial | int = trial_id
        if self.callbacks:
            trial = self._storage.get_trial(trial_id)
            self._call_back(trial)
            ended = trial
        if _trial_log.isEnabledFor(logging.INFO):
            self._unlogged.append(ended)

    def _log_ended(self) -> None:
        """Log the ended trials as ``Study.optimize`` does (a read of each, and of the best)."""
        for ended in self._unlogged:
            trial = self._storage.get_trial(ended) if isinstance(ended, int) else ended
            self._log_trial(trial)
        self._unlogged.clear()

    def _log_trial(self, trial: FrozenTrial) -> None:
        state = trial.state
        if state == optuna.trial.TrialState.PRUNED:
            _trial_log.info("Trial %d pruned.", trial.number)
        elif state == optuna.trial.TrialState.COMPLETE:
            values = trial.values or []
            shown = f"value: {values[0]}" if len(values) == 1 else f"values: {values}"
            best = ""
            if len(values) == 1:
                with contextlib.suppress(ValueError):
                    top = self.study.best_trial
                    best = f" Best is trial {top.number} with value: {top.value}."
            _trial_log.info("Trial %d finished with %s and parameters: %s.%s", trial.number,
                            shown, trial.params, best)

    def _call_back(self, trial: FrozenTrial) -> None:
        """Call the callbacks with the ended trial; a ``study.stop()`` there stops the run."""
        if self._callback_study is None:
            self._callback_study = StopAwareStudy(
                study_name=self.study.study_name, storage=self._storage,
                sampler=self.study.sampler, pruner=self.study.pruner,
            )
        study = self._callback_study
        for callback in self.callbacks:
            callback(study, trial)
        if study.stop_requested:
            self._stop(f"study.stop() was called by a callback after trial {trial.number}")

    def _worker_lost(self, flight: _InFlight, outcome: TaskOutcome) -> None:
        """The worker died (crash, or killed itself at its trial's timeout): fail, retry."""
        trial = self._storage.get_trial(flight.trial_id)
        pid = trial.user_attrs.get(WORKER_PID)
        if isinstance(pid, int) and pid != os.getpid():  # a worker stamped it (it ran there)
            self.summary.worker_pids.add(pid)
        started = OBJECTIVE_STARTED in trial.user_attrs
        how = outcome.error or outcome.state
        if trial.state.is_finished():
            failed: FrozenTrial | None = trial
        elif outcome.state == "timeout":
            failed = fail_trial(self._storage, flight.trial_id,
                                f"timeout: ran past trial_timeout; killed by the executor after "
                                f"{self._backstop_s:g} s")
        else:
            prefix = "crash: " if started else "crash: worker died before the objective started: "
            failed = fail_trial(self._storage, flight.trial_id, prefix + how)
        if failed is None or failed.state != optuna.trial.TrialState.FAIL:
            return
        reason = str(failed.user_attrs.get(FAIL_REASON, ""))
        if reason.startswith("timeout:"):
            self.summary.timed_out += 1
        else:
            self.summary.crashed += 1
            _log.warning("trial %d: its worker on %s died (%s)", failed.number,
                         outcome.device_id, how)
            if not started:
                self._start_failures += 1
                if self._start_failures >= MAX_START_FAILURES:
                    raise HwawareError(
                        f"{MAX_START_FAILURES} worker processes in a row died before their "
                        f"trial's objective started (last: {how}); see the errors on stderr"
                    )
        self._queue_retry(failed)

    def _queue_retry(self, failed: FrozenTrial) -> None:
        if self.max_retries > 0 and enqueue_retry(self.study, failed, self.max_retries):
            self.summary.retried += 1

    def _retry_out_of_memory(self, trial_id: int, device_id: str | None) -> None:
        """An out-of-memory trial is queued again when its worker planned a bigger slot."""
        failed = self._storage.get_trial(trial_id)
        action = failed.user_attrs.get(OOM_ACTION, "not re-placed: no plan recorded")
        _log.warning("trial %d ran out of memory on %s; %s", failed.number,
                     device_id or failed.user_attrs.get(_attrs.DEVICE_ID), action)
        if replacing(failed):
            self._queue_retry(failed)

    def _recover(self) -> None:
        """Fail (and retry) RUNNING trials of this node whose owner died with an earlier run
        (on a storage shared by several nodes: the trials whose heartbeat stopped)."""
        if not single_node_storage(self._storage):
            self._fail_stale(now_due=True)
            return
        for failed in fail_trials_of_dead_workers(self.study, self.node):
            self.summary.recovered += 1
            _log.warning("trial %d was left RUNNING by a dead worker; failed it (%s)",
                         failed.number, failed.user_attrs.get(FAIL_REASON))
            self._queue_retry(failed)

    def _fail_in_flight(self, reason: str) -> None:
        ids = [(flight.trial_id, flight.number) for flight in self._in_flight.values()]
        if self._claimed is not None:  # made RUNNING, not submitted yet
            ids.append((self._claimed._trial_id, self._claimed.number))
        for trial_id, number in ids:
            try:
                fail_trial(self._storage, trial_id, reason)
            except Exception:  # the storage may be gone too; the trial stays for a restart
                _log.debug("could not fail trial %d", number, exc_info=True)
        self._in_flight.clear()
        self._claimed = None

    def _ended(self) -> None:
        self.summary.ended += 1
        if self.on_trial_end is not None:
            self.on_trial_end(self.summary)
