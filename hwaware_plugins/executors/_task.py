"""Running one task to its outcome: place, run pinned, classify, re-place after an OOM.

:func:`run_task` is what an executor thread calls for each task. Every lease
it takes is released in a ``finally`` block, whatever the worker did.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hwaware_plugins.errors import LeaseTimeoutError, NoSuitableDeviceError
from hwaware_plugins.events import TrialFinished, TrialPlaced, emit
from hwaware_plugins.executors._oom import next_memory_need
from hwaware_plugins.executors._outcome import Attempt, TaskOutcome, describe_exit
from hwaware_plugins.executors._payload import loads
from hwaware_plugins.executors._strays import DEFAULT_MAX_KEPT, GRACE_ENV, MAX_KEPT_ENV
from hwaware_plugins.executors._worker import PooledWorker
from hwaware_plugins.executors._workers import (
    DEFAULT_MAX_TASKS_PER_WORKER,
    DEFAULT_MEMORY_LEAK_MB,
    PER_TASK_VARIABLES,
    Fitness,
    WorkerPool,
    held_memory_mb,
    retire_reason,
    worker_key,
)

_log = logging.getLogger("hwaware_plugins.executors")

# How often a thread waiting for a lease checks whether its task was cancelled.
_ACQUIRE_POLL_S = 0.25


@dataclass(frozen=True)
class RunSettings:
    """Executor-wide settings every task runs with (validated by the executor)."""

    python: str
    kill_grace_s: float
    max_oom_retries: int
    oom_growth: float
    exclusive: bool
    framework: str | None = None
    emit_events: bool = True
    max_tasks_per_worker: int | None = DEFAULT_MAX_TASKS_PER_WORKER
    memory_leak_mb: float = DEFAULT_MEMORY_LEAK_MB
    max_kept_processes: int = DEFAULT_MAX_KEPT
    executor_name: str = "local"


Runner = Callable[["Task", Any], "RunResult"]
"""Runs one attempt of a task on a lease (a worker process, or a thread)."""


@dataclass(eq=False)
class Task:
    """A submitted task. ``worker`` is the live worker process, if any (read by interrupt).

    ``payload`` is what a worker process unpickles; ``call`` is the callable
    and its arguments as given (the thread executor runs them in place).

    ``oom_device_filter`` chooses the devices of re-placements after an
    out-of-memory failure (``None``: ``device_filter`` again).
    """

    label: str
    payload: bytes
    memory_mb: float | None
    prefer: Any
    device_filter: Callable[[Any], bool] | None
    timeout: float | None
    oom_device_filter: Callable[[Any], bool] | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    worker: PooledWorker | None = None
    call: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None = None


@dataclass(frozen=True)
class RunResult:
    """How one attempt ended (the executor turns it into a TaskOutcome)."""

    state: str
    value: Any
    error: str | None
    traceback: str | None
    runtime_s: float
    exit_code: int | None
    peak_memory_mb: float | None
    peak_rss_mb: float | None
    release_later: bool = False
    """The runner hands the lease on (a thread still running releases it when it ends)."""


def _worker_env(lease: Any, label: str, settings: RunSettings) -> dict[str, str]:
    env = dict(lease.env(os.environ))
    env[GRACE_ENV] = repr(float(settings.kill_grace_s))
    env[MAX_KEPT_ENV] = str(settings.max_kept_processes)
    env.setdefault("HWAWARE_DEVICE_ID", str(lease.device.id))
    env.setdefault("HWAWARE_SLOT_ID", str(lease.slot_id))
    env.setdefault("HWAWARE_LEASE_ID", str(lease.lease_id))
    env["HWAWARE_TASK_LABEL"] = label
    return env


def _classify(
    record: dict[str, Any] | None, *, returncode: int, timed_out: bool, cancelled: bool,
    timeout: float | None, wall_s: float,
) -> RunResult:
    if record is None:
        if cancelled:
            state, error = "cancelled", "interrupted: the worker's process group was terminated"
        elif timed_out:
            state = "timeout"
            error = f"task ran past its {timeout:g} s timeout; its process group was killed"
        else:
            state, error = "crash", describe_exit(returncode)
        return RunResult(state, None, error, None, wall_s, returncode, None, None)
    # A record means the callable finished: keep its result even if a kill raced it.
    rss = record.get("peak_rss_mb")
    cuda = record.get("peak_cuda_mb")
    peak = cuda if cuda is not None else rss
    runtime = float(record.get("runtime_s", wall_s))
    if record["ok"]:
        try:
            value = loads(record["value"])
        except Exception as exc:
            error = f"the return value cannot be loaded here: {type(exc).__name__}: {exc}"
            return RunResult("fail", None, error, None, runtime, returncode, peak, rss)
        return RunResult("complete", value, None, None, runtime, returncode, peak, rss)
    error = f"{record['exc_type']}: {record['exc_message']}".rstrip(": ")
    state = "oom" if record.get("is_oom") else "fail"
    return RunResult(state, None, error, record.get("traceback"), runtime, returncode, peak, rss)


def run_in_worker(task: Task, lease: Any, settings: RunSettings, workers: WorkerPool) -> RunResult:
    """Run ``task`` in a persistent worker bound to ``lease``'s pinning; classify the end.

    The worker is kept for the next task on the same pinning unless
    :func:`~hwaware_plugins.executors._workers.retire_reason` gives a reason to
    replace it (died, timed out, out of memory, task budget, memory held).
    """
    started = time.monotonic()
    env = _worker_env(lease, task.label, settings)
    affinity = getattr(lease, "cpu_affinity", None)
    key = worker_key(str(lease.device.id), affinity, env)
    try:
        worker = workers.checkout(key=key, env=env, cpu_affinity=affinity)
    except OSError as exc:
        error = f"cannot start a worker with {settings.python!r}: {exc}"
        return RunResult("crash", None, error, None, 0.0, None, None, None)
    task.worker = worker
    returncode: int | None = None
    record: dict[str, Any] | None = None
    timed_out = False
    try:
        if task.cancel_event.is_set():  # interrupt() ran before it could see this worker
            worker.kill(settings.kill_grace_s)
        message = {"kind": "task", "payload": task.payload,
                   "env": {k: env[k] for k in PER_TASK_VARIABLES if k in env}}
        reply = worker.run(message, task.timeout)
        record, timed_out = reply.record, reply.timed_out
        if timed_out:
            worker.kill(settings.kill_grace_s)
            record = worker.late_record()  # a result that raced the timeout is kept
    finally:
        task.worker = None
        retire = _retire(worker, record, env, settings)
        returncode = workers.checkin(worker, retire=retire)
        if retire is not None and record is not None:
            _log.info("replacing worker %d: %s", worker.pid, retire)
    return _classify(
        record, returncode=0 if returncode is None else returncode, timed_out=timed_out,
        cancelled=task.cancel_event.is_set(), timeout=task.timeout,
        wall_s=time.monotonic() - started,
    )


def _retire(worker: PooledWorker, record: dict[str, Any] | None, env: dict[str, str],
            settings: RunSettings) -> str | None:
    held: float | None = None
    if record is not None and not worker.broken:
        held = held_memory_mb(worker, visible=env.get("CUDA_VISIBLE_DEVICES", ""), record=record)
        if worker.baseline_mb is None:
            worker.baseline_mb = held
    return retire_reason(
        Fitness(died=record is None or worker.broken,
                worker_reason=None if record is None else record.get("retire"),
                tasks_run=worker.tasks_run, held_mb=held, baseline_mb=worker.baseline_mb),
        max_tasks=settings.max_tasks_per_worker, memory_leak_mb=settings.memory_leak_mb,
    )


def _acquire(pool: Any, task: Task, memory_mb: float | None, replacing: bool) -> Any:
    device_filter = task.device_filter
    if replacing and task.oom_device_filter is not None:
        device_filter = task.oom_device_filter
    while not task.cancel_event.is_set():
        try:
            return pool.acquire(
                memory_mb=memory_mb, device_filter=device_filter, prefer=task.prefer,
                timeout=_ACQUIRE_POLL_S, label=task.label,
            )
        except LeaseTimeoutError:
            continue
    return None


def _emit(settings: RunSettings, hook: str, event: object) -> None:
    if settings.emit_events:
        emit(hook, event)


def _loss(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def run_task(task: Task, pool: Any, settings: RunSettings, runner: Runner) -> TaskOutcome:
    """Run ``task`` to its outcome; never raises for a task failure.

    Each attempt leases a slot, runs the task through ``runner`` (a pinned
    worker process, or a thread) and releases the lease.
    An ``oom`` attempt is re-placed with a larger memory need
    (:func:`~hwaware_plugins.executors._oom.next_memory_need`) at most
    ``settings.max_oom_retries`` times, on the devices ``task.oom_device_filter``
    allows (``task.device_filter`` when it is ``None``); the decision is logged
    at warning level and recorded in ``TaskOutcome.attempts``.

    Cost: a lease per attempt, the runner's cost, and the task's own runtime.
    """
    attempts: list[Attempt] = []
    need = task.memory_mb
    run: RunResult | None = None
    lease_info: tuple[str | None, str | None, str | None] = (None, None, None)
    for attempt_no in range(settings.max_oom_retries + 1):
        try:
            lease = _acquire(pool, task, need, replacing=attempt_no > 0)
        except NoSuitableDeviceError as exc:
            why = f"{type(exc).__name__}: {exc}"
            if run is None:
                run = RunResult("fail", None, why, None, 0.0, None, None, None)
                attempts.append(Attempt(None, "fail", why))
            else:
                attempts.append(Attempt(None, "oom", f"re-placement impossible: {why}"))
            break
        if lease is None:
            run = RunResult("cancelled", None, "interrupted before the task started",
                       None, 0.0, None, None, None)
            attempts.append(Attempt(None, "cancelled", run.error))
            break
        device = lease.device
        lease_info = (device.id, device.device_class, str(lease.slot_id))
        run = None
        try:
            _emit(settings, "hwaware_trial_placed", TrialPlaced(
                framework=settings.framework, trial_id=task.label, device_id=device.id,
                device_class=device.device_class, subspace=None,
                extra={"executor": settings.executor_name, "slot_id": str(lease.slot_id),
                       "attempt": attempt_no + 1, "memory_mb": need},
            ))
            run = runner(task, lease)
        finally:
            leased_mb = getattr(lease, "memory_mb", None)
            if run is None or not run.release_later:
                lease.release()
        reason: str | None = run.error
        retry_need: int | None = None
        if run.state == "oom" and attempt_no < settings.max_oom_retries:
            retry_need = next_memory_need(
                requested_mb=need, leased_mb=leased_mb, peak_mb=run.peak_memory_mb,
                device_memory_mb=device.memory_total_mb or device.memory_free_mb,
                exclusive=settings.exclusive, growth=settings.oom_growth,
            )
            if retry_need is not None:
                reason = f"{run.error}; re-placing with {retry_need} MiB"
                _log.warning("task %s ran out of memory on %s; re-placing with %d MiB "
                             "(attempt %d of %d)", task.label, device.id, retry_need,
                             attempt_no + 2, settings.max_oom_retries + 1)
            else:
                reason = f"{run.error}; not re-placed: no memory size known to grow from " \
                         "(pass memory_mb)"
        attempts.append(Attempt(device.id, run.state, reason))
        _emit(settings, "hwaware_trial_finished", TrialFinished(
            framework=settings.framework, trial_id=task.label, device_id=device.id,
            device_class=device.device_class, subspace=None, state=run.state,
            runtime_s=run.runtime_s, loss=_loss(run.value), peak_memory_mb=run.peak_memory_mb,
            reason=reason,
        ))
        if retry_need is None:
            break
        need = retry_need
    assert run is not None
    return TaskOutcome(
        state=run.state, value=run.value, error=run.error, traceback=run.traceback,
        runtime_s=run.runtime_s, device_id=lease_info[0], device_class=lease_info[1],
        slot_id=lease_info[2], peak_memory_mb=run.peak_memory_mb, exit_code=run.exit_code,
        attempts=attempts, label=task.label, memory_mb=need, peak_rss_mb=run.peak_rss_mb,
    )
