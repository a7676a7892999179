"""What a task submitted to an executor ended as."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any, NamedTuple

TASK_STATES: tuple[str, ...] = ("complete", "fail", "crash", "oom", "timeout", "cancelled")
"""Every state a :class:`TaskOutcome` can have.

``complete``: the callable returned; ``fail``: it raised (or the task could
not be placed); ``crash``: the worker process died without a result;
``oom``: the accelerator ran out of memory on every allowed attempt;
``timeout``: the task ran past its time limit and its process group was
killed; ``cancelled``: :meth:`LocalExecutor.interrupt` or shutdown stopped it.
"""


class Attempt(NamedTuple):
    """One placement of a task: the device it ran on, how it ended and why."""

    device_id: str | None
    state: str
    reason: str | None


@dataclass(frozen=True)
class TaskOutcome:
    """The result of one task; the executor resolves every future to one of these.

    :param state: one of :data:`TASK_STATES`.
    :param value: what the callable returned (``complete`` only, else ``None``).
    :param error: one line, ``"ExceptionType: message"`` for ``fail``/``oom``,
        the exit code or signal for ``crash``, the limit for ``timeout``.
    :param traceback: the worker-side traceback text when the callable raised.
    :param runtime_s: seconds the callable ran (measured in the worker), or the
        worker's lifetime when it gave no result; 0 when it never started.
    :param device_id: the device of the last attempt (``None`` if never placed).
    :param device_class: that device's class.
    :param slot_id: the pool slot of the last attempt.
    :param peak_memory_mb: peak CUDA memory allocated when the worker used CUDA,
        else the worker's peak resident set size; ``None`` when unknown.
    :param exit_code: the worker's exit status (negative: killed by that signal).
    :param attempts: every placement in order, as ``(device_id, state, reason)``.
    :param label: the label given at submit (or the executor's task id).
    :param memory_mb: the memory need of the last attempt (grows after an OOM).
    :param peak_rss_mb: the worker's peak resident set size in MiB.
    :param retries: how often the task was submitted again after its worker
        failed it (:func:`~hwaware_plugins.executors.submit_with_retries`); 0 otherwise.
    """

    state: str
    value: Any = None
    error: str | None = None
    traceback: str | None = None
    runtime_s: float = 0.0
    device_id: str | None = None
    device_class: str | None = None
    slot_id: str | None = None
    peak_memory_mb: float | None = None
    exit_code: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    label: str | None = None
    memory_mb: float | None = None
    peak_rss_mb: float | None = None
    retries: int = 0

    @property
    def ok(self) -> bool:
        """True when the callable returned a value (state ``complete``)."""
        return self.state == "complete"


def describe_exit(returncode: int) -> str:
    """One line naming how a worker that gave no result ended, from its exit status.

    A negative status is the signal that killed it (``subprocess`` convention);
    SIGKILL mentions the kernel's out-of-memory killer as a likely cause.
    """
    if returncode < 0:
        number = -returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        text = f"worker process killed by {name} ({returncode}) before returning a result"
        if number == signal.SIGKILL:
            text += " (killed from outside, possibly by the kernel's out-of-memory killer)"
        return text
    return f"worker process exited with code {returncode} before returning a result"
