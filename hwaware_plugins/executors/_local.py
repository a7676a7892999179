"""``LocalExecutor``: persistent worker processes pinned to this node's device slots."""

from __future__ import annotations

import atexit
import itertools
import logging
import queue
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import FrameType, TracebackType
from typing import Any

from hwaware_plugins.errors import HwawareError
from hwaware_plugins.executors._config import (
    check_device_filters,
    check_pinnable,
    check_positive,
    check_settings,
    check_worker_settings,
    default_workers,
    resolve_pool,
)
from hwaware_plugins.executors._fork import check_start_method
from hwaware_plugins.executors._future import TaskFuture
from hwaware_plugins.executors._outcome import Attempt, TaskOutcome
from hwaware_plugins.executors._payload import task_payload
from hwaware_plugins.executors._strays import DEFAULT_MAX_KEPT
from hwaware_plugins.executors._task import RunResult, RunSettings, Task, run_in_worker, run_task
from hwaware_plugins.executors._workers import (
    DEFAULT_MAX_TASKS_PER_WORKER,
    DEFAULT_MEMORY_LEAK_MB,
    WorkerPool,
)

_log = logging.getLogger("hwaware_plugins.executors")
_LIVE: weakref.WeakSet[LocalExecutor] = weakref.WeakSet()
_SignalHandler = Callable[[int, FrameType | None], Any] | int | None


class ExecutorShutdownError(HwawareError, RuntimeError):
    """A task was submitted to an executor that was shut down."""


class LocalExecutor:
    """Runs callables in persistent worker processes, each pinned to a leased device slot.

    Each task takes one lease. It runs in a worker bound to that lease's
    pinning (``CUDA_VISIBLE_DEVICES`` by UUID or index, ``HWAWARE_DEVICE_ID``,
    thread counts, CPU affinity), started once in a process group of its own with the
    pinning in its environment and reused for the next task leased on the same
    pinning, so the objective's imports and CUDA context are paid once per
    worker, not per task. Per task, the worker sets ``HWAWARE_LEASE_ID``,
    ``HWAWARE_SLOT_ID`` and ``HWAWARE_TASK_LABEL``, runs the callable, kills
    what truly leaked (processes whose parent is gone, children holding the
    slot's GPU memory) and keeps what the task left for reuse (joblib/loky
    pools). A worker is replaced, its whole process group killed (SIGTERM,
    SIGKILL after ``kill_grace_s``), after a crash, an out-of-memory failure, a
    timeout, ``max_tasks_per_worker`` tasks, or when it holds more than
    ``memory_leak_mb`` of accelerator memory beyond its first task's level.
    Idle workers are kept (at most ``max_workers`` workers live) and all die at
    :meth:`shutdown` and :meth:`interrupt`; a worker whose executor died (even
    by SIGKILL) sees end-of-file on its stdin and kills its group. Leases are
    released in every case. Failures never raise: each future resolves to a
    :class:`TaskOutcome` whose ``state`` says what happened (see :data:`TASK_STATES`).

    Cost per task once the worker is warm: a lease (one locked file update),
    pickling the callable, its arguments and its result, two pipe trips and a
    scan of the process table (about 1-3 ms together). A new worker is forked
    from this process where that is safe (a few ms; the modules imported here
    are already imported there), else spawned: one interpreter start (about
    50-100 ms) plus the task's imports; see ``start_method``.

    Arguments are stored as given and validated on first :meth:`submit`.

    :param pool_or_devices: a ``DevicePool``, a list of ``Device`` (a pool is
        built over them), or ``None`` to discover this host's devices.
    :param max_workers: tasks placed or running at once (the lease decides
        where); default: the pool's slot count (four per device with memory
        packing).
    :param timeout: default per-task time limit in seconds (``None``: none).
    :param max_oom_retries: how often an out-of-memory task is re-placed.
    :param oom_growth: factor (> 1) by which the memory need grows after an OOM.
    :param kill_grace_s: seconds between SIGTERM and SIGKILL when terminating.
    :param python: the interpreter for workers; it must import hwaware_plugins.
    :param max_tasks_per_worker: tasks a worker runs before it is replaced
        (default 500; ``None``: no limit).
    :param memory_leak_mb: MiB of accelerator memory a worker may hold after a
        task beyond what it held after its first one before it is replaced
        (measured with NVML per process, else torch's reserved memory).
    :param max_kept_processes: processes a task may leave running for reuse in
        its worker; beyond that the worker is replaced (default 64).
    :param framework: recorded in the emitted events (``"optuna"``, ...).
    :param emit_events: emit ``TrialPlaced``/``TrialFinished`` per attempt.
    :param start_method: how workers start: ``"fork"`` (from this process),
        ``"spawn"`` (``python -m hwaware_plugins.executors._child``) or ``"auto"``:
        fork on Linux when ``python`` is this interpreter and CUDA is not
        initialised here, else spawn. ``None`` (default): the
        ``HWAWARE_START_METHOD`` environment variable, else ``"auto"``. See
        docs/executors.md for what a forked worker guarantees.

    Thread-safety: every method may be called from any thread. Used as a
    context manager in the main thread, it also turns SIGTERM into
    :meth:`interrupt` followed by ``SystemExit(143)`` (the previous handler is
    called instead when there was one), and an exception leaving the block
    (Ctrl-C included) interrupts the running tasks.
    """

    _EXECUTOR_NAME = "local"
    _PINS_WORKERS = True  # tasks run in processes pinned through CUDA_VISIBLE_DEVICES

    def __init__(
        self,
        pool_or_devices: Any = None,
        *,
        max_workers: int | None = None,
        timeout: float | None = None,
        max_oom_retries: int = 2,
        oom_growth: float = 1.5,
        kill_grace_s: float = 3.0,
        python: str = sys.executable,
        framework: str | None = None,
        emit_events: bool = True,
        max_tasks_per_worker: int | None = DEFAULT_MAX_TASKS_PER_WORKER,
        memory_leak_mb: float = DEFAULT_MEMORY_LEAK_MB,
        max_kept_processes: int = DEFAULT_MAX_KEPT,
        start_method: str | None = None,
    ) -> None:
        self.pool_or_devices = pool_or_devices
        self.max_workers = max_workers
        self.timeout = timeout
        self.max_oom_retries = max_oom_retries
        self.oom_growth = oom_growth
        self.kill_grace_s = kill_grace_s
        self.python = python
        self.framework = framework
        self.emit_events = emit_events
        self.max_tasks_per_worker = max_tasks_per_worker
        self.memory_leak_mb = memory_leak_mb
        self.max_kept_processes = max_kept_processes
        self.start_method = start_method
        self._workers_pool: WorkerPool | None = None
        self._lock = threading.RLock()
        self._queue: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        # Every task not finished yet (queued, placing or running) and its future.
        self._tasks: dict[Task, TaskFuture] = {}
        self._active: set[Task] = set()
        self._threads: list[threading.Thread] = []
        self._ids = itertools.count(1)
        self._pool: Any = None
        self._settings: RunSettings | None = None
        self._workers = 0
        self._closed = False
        self._previous_sigterm: _SignalHandler = None
        self._installed_sigterm = False

    # -- configuration -------------------------------------------------------------------

    @property
    def pool(self) -> Any:
        """The device pool leases come from (built on first use from ``pool_or_devices``)."""
        self._ready()
        return self._pool

    def _ready(self) -> RunSettings:
        with self._lock:
            if self._settings is not None:
                return self._settings
            check_settings(
                max_workers=self.max_workers, timeout=self.timeout,
                max_oom_retries=self.max_oom_retries, oom_growth=self.oom_growth,
                kill_grace_s=self.kill_grace_s, python=self.python,
            )
            check_worker_settings(
                max_tasks_per_worker=self.max_tasks_per_worker,
                memory_leak_mb=self.memory_leak_mb,
                max_kept_processes=self.max_kept_processes,
            )
            method = check_start_method(self.start_method, python=self.python)
            pool = resolve_pool(self.pool_or_devices)
            if self._PINS_WORKERS:
                check_pinnable(pool)
            self._pool = pool
            self._workers = self.max_workers or default_workers(pool)
            self._settings = RunSettings(
                python=self.python,
                kill_grace_s=float(self.kill_grace_s),
                max_oom_retries=self.max_oom_retries,
                oom_growth=float(self.oom_growth),
                exclusive=getattr(pool, "packing", "exclusive") != "memory",
                framework=self.framework,
                emit_events=self.emit_events,
                max_tasks_per_worker=self.max_tasks_per_worker,
                memory_leak_mb=float(self.memory_leak_mb),
                max_kept_processes=self.max_kept_processes,
                executor_name=self._EXECUTOR_NAME,
            )
            self._workers_pool = WorkerPool(python=self.python,
                                            kill_grace_s=float(self.kill_grace_s),
                                            limit=self._workers, start_method=method)
            _LIVE.add(self)
            return self._settings

    # -- submitting ----------------------------------------------------------------------

    def submit(
        self,
        fn: Callable[..., Any],
        /,
        *args: Any,
        memory_mb: float | None = None,
        prefer: Sequence[str] | None = None,
        device_filter: Callable[[Any], bool] | None = None,
        label: str | None = None,
        timeout: float | None = None,
        oom_device_filter: Callable[[Any], bool] | None = None,
        **kwargs: Any,
    ) -> TaskFuture:
        """Schedule ``fn(*args, **kwargs)`` in a pinned worker; return at once.

        :param memory_mb: the task's memory need in MiB (``None``: a whole device).
        :param prefer: device classes, kinds or ids in order of preference.
        :param device_filter: only devices for which it returns True are used.
        :param label: names the task in events, leases and its outcome.
        :param timeout: time limit in seconds (default: the executor's ``timeout``).
        :param oom_device_filter: the devices a re-placement after an out-of-memory
            failure may use (default ``None``: those of ``device_filter``); lets a
            task pinned to one device class move to a bigger one.
        :raises TaskSerializationError: the callable or an argument cannot be pickled.
        :raises ConfigError: an invalid option.
        :raises ExecutorShutdownError: the executor was shut down.

        Cost: pickling the callable and its arguments in the calling thread.
        """
        self._ready()
        check_positive("memory_mb", memory_mb)
        check_positive("timeout", timeout)
        check_device_filters(device_filter=device_filter, oom_device_filter=oom_device_filter)
        payload, call = self._prepare(fn, args, kwargs)
        with self._lock:
            if self._closed:
                raise ExecutorShutdownError(
                    "cannot submit to a LocalExecutor that was shut down; create a new one"
                )
            number = next(self._ids)
            name = label if label is not None else f"task-{number}"
            task = Task(
                label=name, payload=payload, memory_mb=memory_mb, prefer=prefer,
                device_filter=device_filter,
                timeout=timeout if timeout is not None else self.timeout,
                oom_device_filter=oom_device_filter, call=call,
            )
            future = TaskFuture(name, self.interrupt)
            self._tasks[task] = future
            self._queue.put(task)
            if len(self._threads) < self._workers:
                thread = threading.Thread(
                    target=self._work, name=f"hwaware-local-{len(self._threads) + 1}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _prepare(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[bytes, tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None]:
        """The bytes a worker unpickles (and no in-place call: workers are processes)."""
        return task_payload(fn, args, kwargs), None

    def map(
        self, fn: Callable[..., Any], *iterables: Iterable[Any], **options: Any
    ) -> Iterator[TaskOutcome]:
        """Submit ``fn`` over zipped ``iterables``; yield the outcomes in input order.

        ``options`` are :meth:`submit`'s keyword options (``memory_mb``, ...).
        Every task is submitted before the first outcome is yielded.
        """
        futures = [self.submit(fn, *args, **options) for args in zip(*iterables, strict=False)]

        def outcomes() -> Iterator[TaskOutcome]:
            for future in futures:
                yield future.result()

        return outcomes()

    def _work(self) -> None:
        settings = self._ready()
        while True:
            task = self._queue.get()
            if task is None:
                return
            with self._lock:
                future = self._tasks[task]
                if not future.set_running_or_notify_cancel():
                    del self._tasks[task]
                    continue
                self._active.add(task)
            try:
                outcome = run_task(task, self._pool, settings, self._runner)
            except BaseException as exc:  # a bug here must not leave the future pending
                _log.exception("executor failed to run task %s", task.label)
                outcome = TaskOutcome(
                    state="fail", error=f"internal executor error: {type(exc).__name__}: {exc}",
                    attempts=[Attempt(None, "fail", "internal executor error")],
                    label=task.label,
                )
            finally:
                with self._lock:
                    self._active.discard(task)
                    self._tasks.pop(task, None)
            future.set_result(outcome)

    # -- stopping ------------------------------------------------------------------------

    def _runner(self, task: Task, lease: Any) -> RunResult:
        assert self._settings is not None and self._workers_pool is not None
        return run_in_worker(task, lease, self._settings, self._workers_pool)

    def running_pids(self) -> list[int]:
        """Process ids of the workers running a task now (each leads its own process group)."""
        with self._lock:
            return sorted(t.worker.pid for t in self._active if t.worker is not None)

    def worker_pids(self) -> list[int]:
        """Process ids of every live worker, running a task or idle."""
        workers = self._workers_pool
        return [] if workers is None else workers.pids()

    @property
    def workers_started(self) -> int:
        """How many worker processes this executor has started so far."""
        workers = self._workers_pool
        return 0 if workers is None else workers.started

    def interrupt(self) -> int:
        """Kill every busy worker's process group, stop the idle ones, cancel waiting tasks.

        Running tasks end ``cancelled`` (unless their result was already
        written: completed work is kept), tasks not yet started resolve to a
        ``cancelled`` outcome; their leases are released. Returns how many tasks
        were stopped. Blocks up to ``kill_grace_s`` (plus a short SIGKILL wait).
        The executor stays usable for new submissions.
        """
        with self._lock:
            pending = self._drain()
            started = list(self._tasks)
            for task in started:
                task.cancel_event.set()
        # Tasks taken from the queue but not running yet see the event before placing.
        if self._workers_pool is not None:
            self._workers_pool.kill_all()
        for task, future in pending:
            if future.set_running_or_notify_cancel():
                future.set_result(TaskOutcome(
                    state="cancelled", error="interrupted before the task started",
                    attempts=[Attempt(None, "cancelled", "interrupted before the task started")],
                    label=task.label,
                ))
        return len(started) + len(pending)

    def _drain(self) -> list[tuple[Task, TaskFuture]]:
        pending: list[tuple[Task, TaskFuture]] = []
        sentinels = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                sentinels += 1
            else:
                pending.append((item, self._tasks.pop(item)))
        for _ in range(sentinels):
            self._queue.put(None)
        return pending

    def shutdown(self, wait: bool = True, cancel_running: bool = False, *,
                 workers_leave: str = "wait") -> None:
        """Stop accepting tasks; with ``wait``, block until the tasks end and the workers leave.

        Tasks already submitted still run unless ``cancel_running`` is true, in
        which case :meth:`interrupt` stops them first. Idle workers run their
        exit hooks (so joblib/loky pools close cleanly) and their groups are
        ended. With ``workers_leave="background"`` the call returns once the
        tasks have ended, and the workers leave while the caller goes on (a
        joblib pool's clean close takes 0.1-0.5 s); they are gone by
        interpreter exit at the latest, which waits for them. Idempotent.
        """
        if workers_leave not in ("wait", "background"):
            raise ValueError(
                f"workers_leave must be 'wait' or 'background', got {workers_leave!r}")
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_running:
            self.interrupt()
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()
            if self._workers_pool is not None:
                self._workers_pool.stop_idle(background=workers_leave == "background")

    def __enter__(self) -> LocalExecutor:
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
            self._installed_sigterm = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.shutdown(wait=True, cancel_running=exc_type is not None)
        except BaseException:
            self.interrupt()
            raise
        finally:
            if self._installed_sigterm:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
                self._installed_sigterm = False

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.interrupt()
        previous = self._previous_sigterm
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise SystemExit(128 + signum)

    def _at_exit(self) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        self.interrupt()
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout=float(self.kill_grace_s or 0) + 5.0)
        if self._workers_pool is not None:
            self._workers_pool.kill_all()

    def __repr__(self) -> str:
        return (
            f"LocalExecutor(max_workers={self.max_workers}, timeout={self.timeout}, "
            f"running={len(self._active)})"
        )


@atexit.register
def _stop_live_executors() -> None:
    for executor in list(_LIVE):
        executor._at_exit()
