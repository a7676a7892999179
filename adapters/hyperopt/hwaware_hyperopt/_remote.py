"""Bringing an objective's own exception back from its worker, so ``fmin`` can re-raise it.

An executor reports a failed task by the exception's type name, message and
traceback text only. With ``catch_eval_exceptions=False`` hyperopt re-raises
the objective's exception itself, so ``HardwareAwareTrials`` sends the
objective wrapped in :class:`CatchingObjective`: in the worker, an exception
the objective raises is pickled and returned as a :class:`RaisedInWorker`
value; in the driver, :func:`as_failure` turns that value back into the
executor's ``fail`` outcome and :func:`rebuild` into the exception, with the
worker's traceback as its ``__cause__`` (a :class:`RemoteTraceback`).

An out-of-memory error is re-raised in the worker, untouched, so that the
executor still re-places the trial. This module imports only the standard
library and the core's executor helpers, so a worker that unpickles the
wrapper does not import hyperopt.
"""

from __future__ import annotations

import dataclasses
import traceback
from dataclasses import dataclass
from typing import Any


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process; its ``str`` is that text.

    ``fmin`` sets it as the ``__cause__`` of the objective's exception it
    re-raises, so the worker's frames print above the driver's.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class RaisedInWorker:
    """What an objective raised in a worker: its type, message, traceback and pickle.

    :param type_name: ``type(exc).__qualname__``.
    :param message: ``str(exc)`` on one line.
    :param traceback: the worker-side traceback text.
    :param exception: the pickled exception, ``None`` when it cannot be pickled.
    """

    type_name: str
    message: str
    traceback: str
    exception: bytes | None


class CatchingObjective:
    """Calls an objective and returns what it raised as a :class:`RaisedInWorker`.

    Picklable when the objective is. An out-of-memory error (as the core's
    executors recognise it) and exceptions that are not ``Exception`` (e.g.
    ``SystemExit``) propagate unchanged. Cost: one pickling of the exception
    when the objective raises; nothing otherwise.
    """

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        # The objective's names, so that an executor's errors name it, not this wrapper.
        self.__qualname__ = getattr(fn, "__qualname__", repr(fn))
        self.__name__ = getattr(fn, "__name__", self.__qualname__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the objective; return its value, or what it raised."""
        try:
            return self.fn(*args, **kwargs)
        except Exception as exc:
            from hwaware_plugins.executors._oom import is_oom_error

            if is_oom_error(exc):
                raise
            return _record(exc)


def _record(exc: Exception) -> RaisedInWorker:
    from hwaware_plugins.executors._payload import dumps

    tb = exc.__traceback__
    # Leave out this module's own frame: the worker's traceback starts in the objective.
    text = "".join(traceback.format_exception(type(exc), exc, tb.tb_next if tb else None))
    try:
        blob: bytes | None = dumps(exc)
    except Exception:
        blob = None
    return RaisedInWorker(type(exc).__qualname__, " ".join(str(exc).split()), text, blob)


def as_failure(outcome: Any) -> Any:
    """The executor outcome a :class:`CatchingObjective` value stands for.

    A ``complete`` outcome whose value is a :class:`RaisedInWorker` becomes the
    ``fail`` outcome the executor gives an objective that raised (same error
    line, traceback, and last attempt marked ``fail``); any other outcome is
    returned as is. Pure; O(attempts).
    """
    raised = outcome.value
    if outcome.state != "complete" or not isinstance(raised, RaisedInWorker):
        return outcome
    error = f"{raised.type_name}: {raised.message}".rstrip(": ")
    attempts = list(outcome.attempts or [])
    if attempts and hasattr(attempts[-1], "_replace"):
        attempts[-1] = attempts[-1]._replace(state="fail", reason=error)
    return dataclasses.replace(outcome, state="fail", value=None, error=error,
                               traceback=raised.traceback, attempts=attempts)


def rebuild(raised: RaisedInWorker) -> BaseException | None:
    """The objective's exception with the worker's traceback as its cause, or ``None``.

    ``None`` when the exception was not picklable in the worker or cannot be
    unpickled here (its class is not importable in this process).
    """
    if raised.exception is None:
        return None
    from hwaware_plugins.executors._payload import loads

    try:
        exc = loads(raised.exception)
    except Exception:
        return None
    if not isinstance(exc, BaseException):
        return None
    exc.__cause__ = RemoteTraceback(raised.traceback)
    return exc
