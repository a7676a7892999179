"""Sending tasks to workers: what is accepted, what is rejected and how."""

from __future__ import annotations

import pickle
import threading

import pytest

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.executors import TaskSerializationError
from hwaware_plugins.executors._payload import loads, task_payload


def test_closures_travel_by_value() -> None:
    offset = 5
    envelope = pickle.loads(task_payload(lambda x: x + offset, (1,), {}))
    fn, args, kwargs = loads(envelope["task"])
    assert fn(*args, **kwargs) == 6
    assert envelope["sys_path"]


def test_unpicklable_argument_is_named_in_one_line() -> None:
    with pytest.raises(TaskSerializationError) as info:
        task_payload(print, (), {"lock": threading.Lock()})
    message = str(info.value)
    assert "keyword argument 'lock'" in message and "\n" not in message


def test_unpicklable_callable_is_named() -> None:
    lock = threading.Lock()
    with pytest.raises(TaskSerializationError, match=r"the callable .*not picklable"):
        task_payload(lambda: lock.locked(), (), {})


def test_not_a_callable_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="needs a callable"):
        task_payload(42, (), {})  # type: ignore[arg-type]
