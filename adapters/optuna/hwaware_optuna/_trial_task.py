"""What a worker process of the executor runs for one trial of ``optimize``/``hwaware worker``.

The coordinator made the trial RUNNING and submitted :func:`run_trial` with
its id to a :class:`~hwaware_plugins.executors.LocalExecutor`, which leased a
slot and runs it in a worker process pinned to that slot. Here, in the worker:

1. the study is joined once per worker process and run
   (``optuna.load_study`` with a :class:`~hwaware_optuna._placed.PlacedSampler`
   on the slot this process was pinned to), then reused trial after trial;
2. the trial is stamped with this process (``hwaware:worker_pid``) and kept
   alive with a heartbeat on storages that have one;
3. ``optuna.trial.Trial(study, trial_id)`` rebuilds the running trial from the
   storage; its constructor calls the sampler's ``before_trial``, which picks
   the subspace for the slot's device class and records the placement;
4. the objective runs, watched by ``trial_timeout`` (counted from here, per
   subspace); an out-of-memory failure records the retry's memory need;
5. ``study.tell`` stores the result and the sampler's ``after_trial`` its
   runtime, through the storage, as ``study.optimize`` would; a value that is
   not a number (``None``, ``nan``, a wrong count) fails the trial with its
   reason recorded. ``trial.study.stop()`` (from the objective, or from a base
   sampler such as ``GridSampler`` when its grid is done) is reported back, and
   the coordinator then starts no new trial.

A trial that runs past its ``trial_timeout`` is failed (``timeout: ...``) and
this process kills itself (its process group), so the executor replaces it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from hwaware_optuna import _attrs
from hwaware_optuna._oom import OomPolicy, record_plan
from hwaware_optuna._trials import (
    FAIL_REASON,
    OBJECTIVE_STARTED,
    WORKER_PID,
    WORKER_STARTED,
    fail_trial,
    heartbeat_interval,
    worker_stamp,
)
from hwaware_plugins._forksafe import fork_safe
from hwaware_plugins.executors import TrialTimeout, is_oom_error, timeout_for
from hwaware_plugins.executors._payload import loads, one_line
from hwaware_plugins.hardware import Device

_log = logging.getLogger("hwaware_optuna")


@dataclass(frozen=True)
class RunSpec:
    """What every trial of one ``optimize``/``hwaware worker`` run shares; pickled once.

    :param storage: the optuna storage object (RDB, journal) shared by the workers.
    :param study_name: the study the workers join.
    :param objective: the user's objective.
    :param sampler: keyword arguments of the workers' :class:`PlacedSampler`.
    :param reseed: call ``reseed_rng()`` on each worker's sampler (a shared base
        sampler, as optuna does per thread with ``n_jobs > 1``).
    :param devices: the node's devices; the worker finds its slot's by id.
    :param node: recorded as ``hwaware:node``.
    :param trial_timeout: seconds an objective may run (or per subspace).
    :param oom: how an out-of-memory trial's retry is sized.
    :param optuna_verbosity: the coordinator's ``optuna.logging`` level.
    :param pruner: the study's pruner (``None``: optuna's default), so
        ``trial.should_prune()`` in a worker asks the pruner the user chose.
    """

    storage: Any
    study_name: str
    objective: Any
    sampler: Mapping[str, Any]
    reseed: bool
    devices: Sequence[Device]
    node: str
    trial_timeout: TrialTimeout = None
    oom: OomPolicy = dataclasses.field(default_factory=OomPolicy)
    optuna_verbosity: int = 20
    pruner: Any = None


class StopAwareStudy(optuna.Study):
    """A study whose :meth:`stop` asks the run to start no new trial, outside ``Study.optimize``.

    ``optimize`` runs each trial outside optuna's own loop, where ``Study.stop``
    refuses to work; here it sets :attr:`stop_requested` instead, which the
    worker reports and the coordinator honours (the trials in flight finish).
    """

    stop_requested = False

    def stop(self) -> None:
        """Start no new trial once the running ones finish (as ``Study.stop``)."""
        self.stop_requested = True


@dataclass
class _Context:
    spec: RunSpec
    study: StopAwareStudy
    device: Device


_contexts: dict[tuple[str, str, str], _Context] = {}
_contexts_lock = fork_safe(threading.Lock())


def slot_device(devices: Sequence[Device], device_id: str) -> Device:
    """The device of this process's slot (a CPU slot keeps its share of cores, its affinity).

    :raises LookupError: ``device_id`` is not one of ``devices``.
    """
    for device in devices:
        if device.id == device_id:
            cores = device.cores
            if device.kind == "cpu" and hasattr(os, "sched_getaffinity"):
                cores = len(os.sched_getaffinity(0))
            return dataclasses.replace(device, slots=1, cores=cores)
    raise LookupError(f"this worker's device {device_id!r} is not one of the run's devices")


def _context(run_id: str, blob: bytes) -> _Context:
    """The joined study of run ``run_id`` in this process: built once, then reused."""
    from hwaware_optuna._placed import HeldSlot, PlacedSampler

    device_id = os.environ.get("HWAWARE_DEVICE_ID", "")
    slot_id = os.environ.get("HWAWARE_SLOT_ID") or device_id
    key = (run_id, device_id, slot_id)
    with _contexts_lock:
        context = _contexts.get(key)
        if context is not None:
            return context
        spec: RunSpec = loads(blob)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        optuna.logging.set_verbosity(spec.optuna_verbosity)
        device = slot_device(spec.devices, device_id)
        sampler = PlacedSampler(HeldSlot(device, slot_id), **spec.sampler)
        if spec.reseed:
            sampler.reseed_rng()
        study = StopAwareStudy(study_name=spec.study_name, storage=spec.storage,
                               sampler=sampler, pruner=spec.pruner)
        _contexts.clear()  # one run at a time per worker process
        context = _contexts[key] = _Context(spec, study, device)
        return context


class _Heartbeat:
    """Records the trial's heartbeat every interval (storages with a heartbeat) until stopped."""

    def __init__(self, storage: Any, trial_id: int) -> None:
        self.storage = storage
        self.trial_id = trial_id
        self.interval = heartbeat_interval(storage)
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:
        if self.interval is not None:
            self.storage.record_heartbeat(self.trial_id)
            self.thread = threading.Thread(target=self._beat, daemon=True,
                                           name=f"hwaware-heartbeat-{self.trial_id}")
            self.thread.start()
        return self

    def _beat(self) -> None:
        assert self.interval is not None
        while not self.stopped.wait(self.interval):
            with contextlib.suppress(Exception):
                self.storage.record_heartbeat(self.trial_id)

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()


class _Watchdog:
    """Fails the trial and kills this worker when the objective runs past ``limit_s``.

    The lock decides the race with the objective's end: whoever takes it first
    wins; once the objective has ended, the watchdog does nothing.
    """

    def __init__(self, storage: Any, trial_id: int, number: int, limit_s: float | None) -> None:
        self.storage = storage
        self.trial_id = trial_id
        self.number = number
        self.limit_s = limit_s
        self.lock = threading.Lock()
        self.ended = False
        self.timer: threading.Timer | None = None

    def __enter__(self) -> _Watchdog:
        if self.limit_s is not None:
            self.timer = threading.Timer(self.limit_s, self._expire)
            self.timer.daemon = True
            self.timer.start()
        return self

    def _expire(self) -> None:
        with self.lock:
            if self.ended:
                return
            self.ended = True
            with contextlib.suppress(Exception):
                fail_trial(self.storage, self.trial_id,
                           f"timeout: ran past trial_timeout={self.limit_s:g} s")
            _log.warning("trial %d ran past its trial_timeout of %g s; killing its worker",
                         self.number, self.limit_s)
            leader = os.getpgrp() == os.getpid()
            os.killpg(os.getpgrp(), signal.SIGKILL) if leader else os.kill(
                os.getpid(), signal.SIGKILL)

    def end(self) -> bool:
        """Stop watching; False when the time was already up (the trial is failed)."""
        with self.lock:
            if self.ended:
                return False
            self.ended = True
        if self.timer is not None:
            self.timer.cancel()
        return True

    def __exit__(self, *exc: object) -> None:
        self.end()


def value_problem(value: Any, n_objectives: int) -> str | None:
    """Why ``value`` cannot be a result of a study with ``n_objectives`` objectives, or ``None``.

    Optuna fails such a trial too, but without saying why in the trial. Pure.
    """
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [
        value]
    if len(values) != n_objectives:
        return (f"the objective returned {len(values)} values for a study of "
                f"{n_objectives} objectives")
    for item in values:
        try:
            number = float(item)
        except (TypeError, ValueError):
            return f"the objective returned {item!r}, not a number"
        if math.isnan(number):
            return "the objective returned nan"
    return None


def _evaluate(trial: Any, context: _Context, leased_mb: float | None) -> tuple[
        Any, Any, str | None]:
    """Run the objective: ``(values, state, fail reason)`` for ``study.tell``."""
    from optuna.trial import TrialState

    oom = False
    try:
        value = context.spec.objective(trial)
    except optuna.TrialPruned:
        return None, TrialState.PRUNED, None
    except Exception as exc:
        oom = is_oom_error(exc)
        reason = f"{'oom' if oom else 'error'}: {one_line(exc)}"
    else:
        problem = value_problem(value, len(context.study.directions))
        if problem is None:
            return value, None, None
        reason = f"error: {problem}"
    _log.warning("trial %d failed: %s", trial.number, reason)
    with contextlib.suppress(Exception):
        trial.set_user_attr(FAIL_REASON, reason)
        if oom:
            record_plan(trial, context.device, context.spec.oom, leased_mb)
    return None, TrialState.FAIL, reason


def run_trial(run_id: str, blob: bytes, trial_id: int,
              leased_mb: float | None = None) -> dict[str, Any]:
    """Run the RUNNING trial ``trial_id`` of run ``run_id`` here; return what happened.

    ``blob`` is the pickled :class:`RunSpec` (unpickled once per process).
    Returns ``{"state": ..., "number": ..., "fail_reason": ..., "objective":
    bool, "pid": ..., "stop": bool}`` (``stop``: ``study.stop()`` was called);
    the trial itself is told through the storage. Cost on a reused worker: a
    few storage writes and reads on top of the objective.
    """
    context = _context(run_id, blob)
    storage = context.spec.storage
    study = context.study
    stamp = worker_stamp(os.getpid(), context.spec.node)
    study.stop_requested = False
    result: dict[str, Any] = {"pid": os.getpid(), "objective": False, "fail_reason": None,
                              "stop": False}
    for key in (WORKER_PID, WORKER_STARTED):
        storage.set_trial_user_attr(trial_id, key, stamp[key])
    with _Heartbeat(storage, trial_id):
        frozen = storage.get_trial(trial_id)
        result["number"] = frozen.number
        if frozen.state.is_finished():
            result["state"] = frozen.state.name
            return result
        try:
            trial = optuna.trial.Trial(study, trial_id)  # calls the sampler's before_trial
        except Exception as exc:
            placing = f"error: placing the trial failed: {one_line(exc)}"
            fail_trial(storage, trial_id, placing)
            result.update(state="FAIL", fail_reason=placing)
            return result
        limit = timeout_for(context.spec.trial_timeout, trial.user_attrs.get(_attrs.SUBSPACE))
        storage.set_trial_user_attr(trial_id, OBJECTIVE_STARTED, time.time())
        result["objective"] = True
        with _Watchdog(storage, trial_id, trial.number, limit) as watchdog:
            values, state, reason = _evaluate(trial, context, leased_mb)
            if not watchdog.end():
                time.sleep(3600)  # being killed by the watchdog
        told = study.tell(trial, values, state=state, skip_if_finished=True)
    result.update(state=told.state.name, fail_reason=reason, stop=study.stop_requested,
                  peak_memory_mb=told.user_attrs.get(_attrs.PEAK_MEMORY_MB))
    return result
