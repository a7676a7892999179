"""Serialising tasks and results between the executor and its worker processes.

cloudpickle is used when installed (it sends lambdas, closures and functions
defined in ``__main__`` by value); otherwise the standard :mod:`pickle`, which
sends functions by reference (they must be importable by the worker).
"""

from __future__ import annotations

import pickle
import struct
import sys
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from hwaware_plugins.errors import ConfigError

HEADER = struct.Struct("!Q")
"""The length prefix (8 bytes, big-endian) of the task envelope sent on a worker's stdin."""


class TaskSerializationError(ConfigError):
    """A task's callable or arguments cannot be sent to a worker process."""


def _serializer() -> ModuleType:
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle is installed in tests
        return pickle
    module: ModuleType = cloudpickle
    return module


def dumps(obj: object) -> bytes:
    """Serialise ``obj`` with cloudpickle if installed, else pickle. Cost: O(size)."""
    data: bytes = _serializer().dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return data


def loads(data: bytes) -> Any:
    """The inverse of :func:`dumps` (cloudpickle output is plain pickle data)."""
    return pickle.loads(data)


def one_line(exc: BaseException) -> str:
    """``"Type: message"`` with the message's white space folded into one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check(what: str, obj: object) -> bytes:
    try:
        return dumps(obj)
    except Exception as exc:
        hint = (
            "define it at module level or pass only picklable values"
            if _serializer() is not pickle
            else "define it at module level, or install cloudpickle to send closures"
        )
        raise TaskSerializationError(
            f"cannot send the task to a worker process: {what} is not picklable "
            f"({one_line(exc)}); {hint}"
        ) from exc


def task_payload(
    fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> bytes:
    """The bytes a worker needs to run ``fn(*args, **kwargs)``.

    The envelope carries this interpreter's ``sys.path`` so functions pickled by
    reference import in the worker as they do here. Arguments are captured now:
    mutating them after submit does not change the task.

    :raises TaskSerializationError: naming the callable or the argument that
        cannot be pickled.

    Cost: serialising the callable and its arguments once (again piece by piece
    when that fails, to name the culprit).
    """
    if not callable(fn):
        raise ConfigError(f"submit() needs a callable, got {type(fn).__name__}; pass a function")
    try:
        task = dumps((fn, tuple(args), dict(kwargs)))
    except Exception:
        # Serialise the pieces one by one only to name the culprit.
        _check(f"the callable {getattr(fn, '__qualname__', repr(fn))!r}", fn)
        for index, value in enumerate(args):
            _check(f"positional argument {index} ({type(value).__name__})", value)
        for key, value in kwargs.items():
            _check(f"keyword argument {key!r} ({type(value).__name__})", value)
        task = _check("the task", (fn, tuple(args), dict(kwargs)))
    envelope = {"sys_path": list(sys.path), "task": task}
    return pickle.dumps(envelope, protocol=pickle.HIGHEST_PROTOCOL)
