"""``RetryingExecutor``: worker failures are retried on a fresh placement, bounded."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from hwaware_plugins.chaos import RetryingExecutor
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.executors import Attempt, TaskOutcome


class _Scripted:
    """An executor whose n-th submission ends in the n-th scripted state."""

    def __init__(self, states: list[str]) -> None:
        self.states = states
        self.labels: list[str | None] = []
        self.interrupted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, label: str | None = None,
               **options: Any) -> Future[TaskOutcome]:
        state = self.states[len(self.labels)]
        self.labels.append(label)
        future: Future[TaskOutcome] = Future()
        future.set_result(TaskOutcome(
            state=state, value=1.0 if state == "complete" else None,
            error=None if state == "complete" else f"{state} happened",
            attempts=[Attempt(f"gpu:{len(self.labels)}", state, None)], label=label,
        ))
        return future

    def interrupt(self) -> int:
        self.interrupted += 1
        return 0


def test_crash_then_oom_then_success_keeps_every_attempt() -> None:
    inner = _Scripted(["crash", "oom", "complete"])
    outcome = RetryingExecutor(inner, max_retries=2).submit(print, label="t1").result()
    assert outcome.state == "complete" and outcome.value == 1.0
    assert [a.state for a in outcome.attempts] == ["crash", "oom", "complete"]
    assert inner.labels == ["t1", "t1#retry-1", "t1#retry-2"]


def test_retries_are_bounded() -> None:
    inner = _Scripted(["timeout"] * 5)
    outcome = RetryingExecutor(inner, max_retries=2).submit(print, label="t").result()
    assert outcome.state == "timeout" and len(outcome.attempts) == 3
    assert len(inner.labels) == 3


@pytest.mark.parametrize("state", ["fail", "cancelled"])
def test_objective_errors_and_cancellations_are_not_retried(state: str) -> None:
    inner = _Scripted([state, "complete"])
    assert RetryingExecutor(inner, max_retries=3).submit(print).result().state == state
    assert len(inner.labels) == 1


def test_no_retry_after_interrupt() -> None:
    inner = _Scripted(["crash", "complete"])
    executor = RetryingExecutor(inner, max_retries=1)
    executor._stopped.set()  # as interrupt() leaves it, while a task is in flight
    future: Future[TaskOutcome] = Future()
    executor._attempt(future, print, (), {}, "t", 0, 1, [])
    assert future.result().state == "crash"
    executor.interrupt()
    assert inner.interrupted == 1


@pytest.mark.parametrize("bad", [-1, 1.5, True, None])
def test_invalid_max_retries_is_named(bad: Any) -> None:
    with pytest.raises(ConfigError, match="max_retries must be an int >= 0"):
        RetryingExecutor(_Scripted(["complete"]), max_retries=bad).submit(print)
