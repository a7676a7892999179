"""``ThreadExecutor``: the executor contract in coordinator threads, each told its device."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from hwaware_plugins.executors._context import (
    reset_running_on,
    running_on_lease,
    set_running_on,
)
from hwaware_plugins.executors._local import LocalExecutor
from hwaware_plugins.executors._oom import is_oom_error
from hwaware_plugins.executors._task import RunResult, Task

# How often a waiting executor thread checks for interrupt().
_WAIT_POLL_S = 0.05


class ThreadExecutor(LocalExecutor):
    """Runs callables in threads of this process, one lease per task, each told its device.

    For objectives that keep state in the coordinator (hyperopt-sklearn's
    ``HyperoptEstimator`` stores the best model on itself) or that cannot be
    pickled. Same API and outcomes as :class:`LocalExecutor`: ``submit``
    returns a :class:`TaskFuture` resolving to a :class:`TaskOutcome`; leases,
    memory packing, OOM re-placement and events work the same. The task calls
    :func:`~hwaware_plugins.executors.current_device` to learn its lease (device,
    slot, ``cuda_index``, CPU cores) and must place its work there itself.

    What threads cannot give (use :class:`LocalExecutor` when you need it):
    no ``CUDA_VISIBLE_DEVICES`` (all threads share one CUDA context; MIG
    instances cannot be reached) and no CPU affinity or thread-count pinning;
    no kill on timeout or interrupt: the outcome says ``timeout`` or
    ``cancelled`` at once, but the thread runs on and its lease stays held until
    the callable returns; no crash isolation: a segfault or ``os._exit`` ends
    the coordinator; peak memory is not measured. Arguments are passed as
    given, not copied: the callable sees (and may change) the caller's objects.

    Arguments are :class:`LocalExecutor`'s; ``python``, ``kill_grace_s`` and
    the worker settings are accepted and unused. Cost per task: a lease and
    one thread start (tens of microseconds) plus the callable.
    """

    _EXECUTOR_NAME = "thread"
    _PINS_WORKERS = False  # threads are told their device, never pinned

    def _prepare(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[bytes, tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None]:
        if not callable(fn):
            from hwaware_plugins.errors import ConfigError

            raise ConfigError(
                f"submit() needs a callable, got {type(fn).__name__}; pass a function"
            )
        return b"", (fn, tuple(args), dict(kwargs))

    def _runner(self, task: Task, lease: Any) -> RunResult:
        return run_in_thread(task, lease)

    def __repr__(self) -> str:
        return (
            f"ThreadExecutor(max_workers={self.max_workers}, timeout={self.timeout}, "
            f"running={len(self._active)})"
        )


def run_in_thread(task: Task, lease: Any) -> RunResult:
    """Run ``task.call`` in a new thread told ``lease``; wait for it, its timeout or a cancel.

    On timeout or cancel the result comes back at once with ``release_later``
    set: the thread, which cannot be stopped, releases the lease when the
    callable returns.
    """
    assert task.call is not None
    fn, args, kwargs = task.call
    box: dict[str, Any] = {}
    done = threading.Event()
    handed_on = threading.Event()
    lock = threading.Lock()
    context = running_on_lease(lease, task.label)

    def target() -> None:
        token = set_running_on(context)
        started = time.perf_counter()
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:
            box["error"] = exc
        finally:
            box["runtime"] = time.perf_counter() - started
            reset_running_on(token)
            with lock:
                done.set()
                release = handed_on.is_set()
            if release:
                lease.release()

    thread = threading.Thread(target=target, name=f"hwaware-task-{task.label}", daemon=True)
    started = time.monotonic()
    thread.start()
    deadline = None if task.timeout is None else started + task.timeout
    state = None
    while not done.wait(_WAIT_POLL_S):
        if task.cancel_event.is_set():
            state = "cancelled"
        elif deadline is not None and time.monotonic() >= deadline:
            state = "timeout"
        if state is not None:
            with lock:
                if not done.is_set():
                    handed_on.set()
                    break
            state = None  # it finished meanwhile: report its result
    if handed_on.is_set():
        waited = time.monotonic() - started
        error = (f"task ran past its {task.timeout:g} s timeout" if state == "timeout"
                 else "interrupted") + "; a thread cannot be killed: it runs on, and its " \
            "slot stays leased until it returns"
        return RunResult(str(state), None, error, None, waited, None, None, None,
                         release_later=True)
    return _result(box)


def _result(box: dict[str, Any]) -> RunResult:
    runtime = float(box.get("runtime", 0.0))
    if "error" not in box:
        return RunResult("complete", box.get("value"), None, None, runtime, None, None, None)
    import traceback

    exc: BaseException = box["error"]
    message = " ".join(str(exc).split())
    error = f"{type(exc).__qualname__}: {message}".rstrip(": ")
    text = "".join(traceback.format_exception(exc))
    state = "oom" if is_oom_error(exc) else "fail"
    return RunResult(state, None, error, text, runtime, None, None, None)


__all__ = ["ThreadExecutor", "run_in_thread"]
