"""The future a task submission returns."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

from hwaware_plugins.executors._outcome import TaskOutcome


class TaskFuture(Future[TaskOutcome]):
    """A :class:`concurrent.futures.Future` resolving to a :class:`TaskOutcome`.

    It never resolves to an exception for a task failure: the outcome's
    ``state`` says what happened. A ``KeyboardInterrupt`` raised while
    :meth:`result` waits kills every running worker of the executor (their
    tasks end ``cancelled``) before it propagates, so Ctrl-C leaves no process
    behind. Thread-safe like every ``Future``.

    :param label: the task's label (also ``TaskOutcome.label``).
    :param on_interrupt: called when the waiting thread is interrupted.
    """

    def __init__(self, label: str, on_interrupt: Callable[[], object]) -> None:
        super().__init__()
        self.label = label
        self._on_interrupt = on_interrupt

    def result(self, timeout: float | None = None) -> TaskOutcome:
        """Wait for the outcome (``TimeoutError`` after ``timeout`` seconds)."""
        try:
            return super().result(timeout)
        except KeyboardInterrupt:
            self._on_interrupt()
            raise
