"""``RetryingExecutor``: re-submit tasks that crashed, ran out of memory or timed out."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from hwaware_plugins.chaos._objective import RETRY_MARK
from hwaware_plugins.errors import ConfigError

_log = logging.getLogger("hwaware_plugins.chaos")

RETRY_STATES: tuple[str, ...] = ("crash", "oom", "timeout")
"""Outcome states retried by default: the worker, not the objective's code, failed."""


def _check_retries(max_retries: Any) -> int:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigError(f"max_retries must be an int >= 0, got {max_retries!r}")
    return max_retries


class RetryingExecutor:
    """Wraps an executor (``LocalExecutor``, ``DaskExecutor``) and retries failed tasks.

    A task whose outcome state is in ``retry_on`` is submitted again, up to
    ``max_retries`` times; each retry takes a fresh lease (a fresh placement)
    and its label gets ``#retry-<n>``. The returned future resolves to the last
    outcome, whose ``attempts`` list every placement of every try, so nothing
    about the failures is lost. A ``fail`` (the objective raised) or a
    ``cancelled`` outcome is never retried. After :meth:`interrupt` no retry is
    started. Anything else (``pool``, ``running_pids``...) is the wrapped
    executor's.

    Thread-safety: as the wrapped executor; retries are submitted from the
    thread that resolved the failed attempt. Cost: nothing beyond the retries.

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
        self._stopped = threading.Event()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **options: Any) -> Future[Any]:
        """Submit ``fn(*args, **kwargs)`` as the wrapped executor would; retry on failure."""
        retries = _check_retries(self.max_retries)
        self._stopped.clear()
        outer: Future[Any] = Future()
        outer.set_running_or_notify_cancel()
        label = options.get("label")
        self._attempt(outer, fn, args, options, label, 0, retries, [])
        return outer

    def _attempt(
        self, outer: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...],
        options: dict[str, Any], label: str | None, number: int, retries: int,
        earlier: list[Any],
    ) -> None:
        opts = dict(options)
        if number and label is not None:
            opts["label"] = f"{label}{RETRY_MARK}retry-{number}"
        inner = self.executor.submit(fn, *args, **opts)

        def done(future: Future[Any]) -> None:
            try:
                outcome = future.result()
            except BaseException as exc:  # the wrapped executor itself failed
                outer.set_exception(exc)
                return
            attempts = earlier + list(outcome.attempts)
            outcome = dataclasses.replace(outcome, attempts=attempts)
            if (outcome.state in self.retry_on and number < retries
                    and not self._stopped.is_set()):
                _log.warning("task %s ended %s (%s); retrying on a fresh placement (%d of %d)",
                             label, outcome.state, outcome.error, number + 1, retries)
                try:
                    self._attempt(outer, fn, args, options, label, number + 1, retries, attempts)
                    return
                except Exception as exc:  # e.g. shut down meanwhile: keep the last outcome
                    _log.warning("task %s not retried: %s", label, exc)
            outer.set_result(outcome)

        inner.add_done_callback(done)

    def interrupt(self) -> int:
        """Stop retrying and interrupt the wrapped executor; returns what it returns."""
        self._stopped.set()
        return int(self.executor.interrupt())

    def shutdown(self, wait: bool = True, cancel_running: bool = False) -> None:
        """Shut the wrapped executor down (no retry starts after ``cancel_running``)."""
        if cancel_running:
            self._stopped.set()
        self.executor.shutdown(wait=wait, cancel_running=cancel_running)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.executor, name)
