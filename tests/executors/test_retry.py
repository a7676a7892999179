"""Retries of worker failures (``submit_with_retries``, ``RetryingExecutor``): bounded, on a
fresh placement, every attempt kept."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from hwaware_plugins.chaos import RetryingExecutor as ChaosRetryingExecutor
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.executors import (
    Attempt,
    RetryGate,
    RetryingExecutor,
    TaskOutcome,
    submit_with_retries,
)


class _Scripted:
    """An executor whose n-th submission ends in the n-th scripted state.

    With ``hold``, futures stay pending until :meth:`finish` resolves them.
    """

    def __init__(self, states: list[str], *, hold: bool = False) -> None:
        self.states = states
        self.hold = hold
        self.labels: list[str | None] = []
        self.options: list[dict[str, Any]] = []
        self.pending: list[tuple[Future[TaskOutcome], TaskOutcome]] = []
        self.interrupted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, label: str | None = None,
               **options: Any) -> Future[TaskOutcome]:
        state = self.states[len(self.labels)]
        self.labels.append(label)
        self.options.append(options)
        future: Future[TaskOutcome] = Future()
        outcome = TaskOutcome(
            state=state, value=1.0 if state == "complete" else None,
            error=None if state == "complete" else f"{state} happened",
            attempts=[Attempt(f"gpu:{len(self.labels)}", state, None)], label=label,
        )
        if self.hold:
            self.pending.append((future, outcome))
        else:
            future.set_result(outcome)
        return future

    def finish(self) -> None:
        while self.pending:
            future, outcome = self.pending.pop(0)
            future.set_result(outcome)

    def interrupt(self) -> int:
        self.interrupted += 1
        return 0


def test_crash_then_oom_then_success_keeps_every_attempt() -> None:
    inner = _Scripted(["crash", "oom", "complete"])
    outcome = RetryingExecutor(inner, max_retries=2).submit(print, label="t1").result()
    assert outcome.state == "complete" and outcome.value == 1.0 and outcome.retries == 2
    assert [a.state for a in outcome.attempts] == ["crash", "oom", "complete"]
    assert inner.labels == ["t1", "t1#retry-1", "t1#retry-2"]


def test_retries_are_bounded() -> None:
    inner = _Scripted(["timeout"] * 5)
    outcome = RetryingExecutor(inner, max_retries=2).submit(print, label="t").result()
    assert outcome.state == "timeout" and len(outcome.attempts) == 3 and outcome.retries == 2
    assert len(inner.labels) == 3


@pytest.mark.parametrize("state", ["fail", "cancelled"])
def test_objective_errors_and_cancellations_are_not_retried(state: str) -> None:
    inner = _Scripted([state, "complete"])
    outcome = RetryingExecutor(inner, max_retries=3).submit(print).result()
    assert outcome.state == state and outcome.retries == 0
    assert len(inner.labels) == 1


def test_no_retry_after_interrupt() -> None:
    inner = _Scripted(["crash", "complete"], hold=True)
    executor = RetryingExecutor(inner, max_retries=1)
    future = executor.submit(print, label="t")
    executor.interrupt()  # while the first attempt is in flight
    inner.finish()
    assert future.result().state == "crash" and inner.labels == ["t"]
    assert inner.interrupted == 1


def test_the_helper_passes_options_and_arguments_to_every_attempt() -> None:
    inner = _Scripted(["oom", "complete"])
    gate = RetryGate()
    outcome = submit_with_retries(inner, print, (1, 2), {"label": "x", "memory_mb": 100},
                                  max_retries=1, gate=gate).result()
    assert outcome.state == "complete" and inner.labels == ["x", "x#retry-1"]
    assert inner.options == [{"memory_mb": 100}, {"memory_mb": 100}]
    gate.close()
    inner = _Scripted(["oom", "complete"])
    outcome = submit_with_retries(inner, print, max_retries=1, gate=gate).result()
    assert outcome.state == "oom" and len(inner.labels) == 1


def test_the_chaos_package_still_offers_the_wrapper() -> None:
    assert ChaosRetryingExecutor is RetryingExecutor


@pytest.mark.parametrize("bad", [-1, 1.5, True, None])
def test_invalid_max_retries_is_named(bad: Any) -> None:
    with pytest.raises(ConfigError, match="max_retries must be an int >= 0"):
        RetryingExecutor(_Scripted(["complete"]), max_retries=bad).submit(print)
