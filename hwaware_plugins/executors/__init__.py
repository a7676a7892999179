"""Executors: run trials in worker processes pinned to leased device slots.

:class:`LocalExecutor` runs each task in a persistent worker process on this
node, pinned to a slot of a :class:`~hwaware_plugins.hardware._pool.DevicePool`
and reused task after task; :class:`ThreadExecutor` runs tasks in threads of
this process, each told its lease (:func:`current_device`); every task
ends in a :class:`TaskOutcome` (``complete``, ``fail``, ``crash``, ``oom``,
``timeout`` or ``cancelled``), never in an exception; :func:`submit_with_retries`
and :class:`RetryingExecutor` retry the tasks a worker failed. See ``docs/executors.md``.

Names are imported on first access, so a worker process (which imports
``hwaware_plugins.executors._child``) does not pay for the executor's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwaware_plugins._lazy import lazy_exports

if TYPE_CHECKING:
    from hwaware_plugins.executors._context import RunningOn, current_device
    from hwaware_plugins.executors._dask import SLOT_RESOURCE, DaskExecutor, HwawareWorkerPlugin
    from hwaware_plugins.executors._future import TaskFuture
    from hwaware_plugins.executors._local import ExecutorShutdownError, LocalExecutor
    from hwaware_plugins.executors._oom import is_oom_error, next_memory_need
    from hwaware_plugins.executors._outcome import TASK_STATES, Attempt, TaskOutcome
    from hwaware_plugins.executors._payload import TaskSerializationError
    from hwaware_plugins.executors._retry import (
        RETRY_STATES,
        RetryGate,
        RetryingExecutor,
        submit_with_retries,
    )
    from hwaware_plugins.executors._thread import ThreadExecutor
    from hwaware_plugins.executors._timeouts import (
        OTHER_SUBSPACES,
        TrialTimeout,
        check_trial_timeout,
        timeout_for,
    )

_WHERE: dict[str, str] = {
    "RunningOn": "_context",
    "current_device": "_context",
    "ThreadExecutor": "_thread",
    "DaskExecutor": "_dask",
    "HwawareWorkerPlugin": "_dask",
    "SLOT_RESOURCE": "_dask",
    "TASK_STATES": "_outcome",
    "RETRY_STATES": "_retry",
    "RetryGate": "_retry",
    "RetryingExecutor": "_retry",
    "submit_with_retries": "_retry",
    "Attempt": "_outcome",
    "ExecutorShutdownError": "_local",
    "LocalExecutor": "_local",
    "TaskFuture": "_future",
    "TaskOutcome": "_outcome",
    "TaskSerializationError": "_payload",
    "is_oom_error": "_oom",
    "next_memory_need": "_oom",
    "OTHER_SUBSPACES": "_timeouts",
    "TrialTimeout": "_timeouts",
    "check_trial_timeout": "_timeouts",
    "timeout_for": "_timeouts",
}

__all__ = [
    "OTHER_SUBSPACES",
    "RETRY_STATES",
    "SLOT_RESOURCE",
    "TASK_STATES",
    "Attempt",
    "DaskExecutor",
    "ExecutorShutdownError",
    "HwawareWorkerPlugin",
    "LocalExecutor",
    "RetryGate",
    "RetryingExecutor",
    "RunningOn",
    "TaskFuture",
    "TaskOutcome",
    "TaskSerializationError",
    "ThreadExecutor",
    "TrialTimeout",
    "check_trial_timeout",
    "current_device",
    "is_oom_error",
    "next_memory_need",
    "submit_with_retries",
    "timeout_for",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
