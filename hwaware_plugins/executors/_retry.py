"""Retrying tasks whose worker failed them (crash, out of memory, timeout) on a fresh placement.

:func:`submit_with_retries` is the one retry loop of the project:
:class:`RetryingExecutor` wraps any executor with it, and hyperopt's
``HardwareAwareTrials(max_retries=N)`` calls it per trial.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from hwaware_plugins.executors._config import check_int
from hwaware_plugins.executors._future import TaskFuture
from hwaware_plugins.executors._outcome import TaskOutcome

_log = logging.getLogger("hwaware_plugins.executors")

RETRY_STATES: tuple[str, ...] = ("crash", "oom", "timeout")
"""Outcome states retried by default: the worker, not the objective's code, failed."""

RETRY_MARK = "#"
"""Separates a task's label from its retry suffix (``trial-7#retry-1``)."""


def check_retries(value: Any, name: str = "max_retries") -> int:
    """Return ``value`` if it is an int >= 0, else raise a one-line :class:`ConfigError`."""
    check_int(name, value, 0)
    return int(value)


def retry_label(label: str, number: int) -> str:
    """The label of the ``number``-th retry of a task labelled ``label`` (0: ``label``)."""
    return f"{label}{RETRY_MARK}retry-{number}" if number else label


class RetryGate:
    """Says whether retries may still start; :meth:`close` stops them for good.

    A retry is submitted while the gate's lock is held, so once :meth:`close`
    returns every retry that will ever start has been submitted: an
    ``interrupt()`` of the executor made afterwards reaches it. Thread-safe; cheap.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()  # a retry may resolve, and retry, in the same thread
        self._closed = False

    @property
    def closed(self) -> bool:
        """True after :meth:`close` (until :meth:`reopen`)."""
        return self._closed

    def close(self) -> None:
        """Start no more retries (waits for a retry being submitted right now)."""
        with self._lock:
            self._closed = True

    def reopen(self) -> None:
        """Allow retries again (for the next batch of submissions)."""
        with self._lock:
            self._closed = False

    def submit_if_open(
        self, submit: Callable[[], Future[TaskOutcome]]
    ) -> Future[TaskOutcome] | None:
        """Call ``submit`` under the lock unless the gate is closed (then ``None``)."""
        with self._lock:
            return None if self._closed else submit()


def submit_with_retries(
    executor: Any,
    fn: Callable[..., Any],
    args: Sequence[Any] = (),
    options: Mapping[str, Any] | None = None,
    *,
    max_retries: int,
    retry_on: Sequence[str] = RETRY_STATES,
    gate: RetryGate | None = None,
) -> TaskFuture:
    """Submit ``fn(*args)`` to ``executor``; submit it again when the worker failed it.

    An attempt whose outcome state is in ``retry_on`` is submitted again with
    the same ``options`` (so the executor places it afresh: a new lease, a new
    worker), up to ``max_retries`` times; retry ``n`` is labelled
    ``<label>#retry-<n>`` and logged at warning level. The returned future
    resolves to the last attempt's :class:`TaskOutcome` with ``attempts``
    listing every placement of every try and ``retries`` the retries used. A
    ``fail`` (the callable raised) or ``cancelled`` outcome is never retried;
    nor is anything once ``gate`` is closed; an executor that refuses the
    retry (shut down meanwhile) leaves the last outcome.

    :param executor: an object with ``submit(fn, *args, **options)`` returning a
        future of a ``TaskOutcome`` (``LocalExecutor``, ``DaskExecutor``).
    :param options: ``submit``'s keyword options (``label``, ``memory_mb``, ...).
    :raises ConfigError: ``max_retries`` is not an int >= 0.
    :raises Exception: whatever ``executor.submit`` raises for the first attempt.

    Cost: nothing beyond the retries; retries are submitted from the thread
    that resolves the failed attempt. Ctrl-C while waiting on the returned
    future's ``result()`` interrupts the executor.
    """
    retries = check_retries(max_retries)
    opts = dict(options or {})
    label = opts.get("label")
    gate = gate if gate is not None else RetryGate()

    def interrupt() -> object:
        gate.close()
        return executor.interrupt()

    outer = TaskFuture(label if label is not None else "", interrupt)
    outer.set_running_or_notify_cancel()

    def attempt(number: int, earlier: list[Any]) -> Future[TaskOutcome]:
        here = dict(opts)
        if label is not None:
            here["label"] = retry_label(label, number)
        inner: Future[TaskOutcome] = executor.submit(fn, *args, **here)
        inner.add_done_callback(lambda done: finished(done, number, earlier))
        return inner

    def finished(future: Future[TaskOutcome], number: int, earlier: list[Any]) -> None:
        try:
            outcome = future.result()
        except BaseException as exc:  # the executor itself failed: hand it on
            outer.set_exception(exc)
            return
        attempts = earlier + list(outcome.attempts)
        outcome = dataclasses.replace(outcome, attempts=attempts, retries=number)
        if outcome.state in retry_on and number < retries:
            _log.warning("task %s ended %s (%s); retrying on a fresh placement (%d of %d)",
                         label, outcome.state, outcome.error, number + 1, retries)
            try:
                if gate.submit_if_open(lambda: attempt(number + 1, attempts)) is not None:
                    return
                _log.warning("task %s not retried: retries were stopped", label)
            except Exception as exc:  # e.g. shut down meanwhile: keep the last outcome
                _log.warning("task %s not retried: %s", label, exc)
        outer.set_result(outcome)

    attempt(0, [])
    return outer


class RetryingExecutor:
    """Wraps an executor (``LocalExecutor``, ``DaskExecutor``) and retries worker failures.

    Every :meth:`submit` goes through :func:`submit_with_retries`: a task that
    crashed, ran out of memory or timed out (``retry_on``) is submitted again
    on a fresh placement, up to ``max_retries`` times, and its outcome lists
    every attempt. After :meth:`interrupt` no retry starts (until the next
    :meth:`submit`). Anything else (``pool``, ``running_pids``...) is the
    wrapped executor's.

    Thread-safety: as the wrapped executor. Cost: nothing beyond the retries.

    :param executor: the executor to wrap.
    :param max_retries: retries per task (validated on the first :meth:`submit`).
    :param retry_on: outcome states that are retried.
    """

    def __init__(
        self, executor: Any, *, max_retries: int = 2, retry_on: Sequence[str] = RETRY_STATES
    ) -> None:
        self.executor = executor
        self.max_retries = max_retries
        self.retry_on = retry_on
        self._gate = RetryGate()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **options: Any) -> TaskFuture:
        """Submit ``fn(*args, **kwargs)`` as the wrapped executor would; retry on failure."""
        check_retries(self.max_retries)
        self._gate.reopen()
        return submit_with_retries(self.executor, fn, args, options,
                                   max_retries=self.max_retries, retry_on=self.retry_on,
                                   gate=self._gate)

    def interrupt(self) -> int:
        """Stop retrying and interrupt the wrapped executor; returns what it returns."""
        self._gate.close()
        return int(self.executor.interrupt())

    def shutdown(self, wait: bool = True, cancel_running: bool = False) -> None:
        """Shut the wrapped executor down (no retry starts after ``cancel_running``)."""
        if cancel_running:
            self._gate.close()
        self.executor.shutdown(wait=wait, cancel_running=cancel_running)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.executor, name)
