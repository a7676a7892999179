"""Objectives the hyperopt adapter tests run in worker processes (stdlib imports only)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any


def square(point: dict[str, Any]) -> float:
    """The loss ``x ** 2``."""
    return float(point["x"]) ** 2


def timed(point: dict[str, Any]) -> dict[str, Any]:
    """Sleep ``point["sleep"]`` seconds; report start, end and the pinned device."""
    started = time.time()
    time.sleep(float(point.get("sleep", 0.3)))
    return {"loss": float(point["x"]) ** 2, "status": "ok", "start": started,
            "end": time.time(), "device": os.environ.get("HWAWARE_DEVICE_ID")}


def fails_above(point: dict[str, Any]) -> float:
    """Raise ``ValueError`` when ``x > 0``, else return ``x ** 2``."""
    if float(point["x"]) > 0:
        raise ValueError(f"x={point['x']} is positive")
    return float(point["x"]) ** 2


def sleepy(point: dict[str, Any]) -> float:
    """Sleep 30 s (to be interrupted or timed out)."""
    time.sleep(30)
    return 0.0


def crash_first(point: dict[str, Any]) -> float:
    """Die on a trial's first attempt (a worker crash); return ``x ** 2`` on a retry."""
    if "#retry" not in os.environ.get("HWAWARE_TASK_LABEL", ""):
        os._exit(70)
    return float(point["x"]) ** 2


GPU_MEMORY_MB = {"small": 4000, "big": 16000}
"""Memory of the device classes the out-of-memory tests declare."""


def needs_memory(point: dict[str, Any]) -> float:
    """Raise a CUDA out-of-memory error on a device class with less than ``need_mb`` MiB."""
    if GPU_MEMORY_MB[os.environ["HWAWARE_DEVICE_CLASS"]] < int(point["need_mb"]):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    return float(point["x"]) ** 2


def sleeps(point: dict[str, Any]) -> float:
    """Sleep ``point["sleep"]`` seconds; return ``x ** 2``."""
    time.sleep(float(point["sleep"]))
    return float(point["x"]) ** 2


class ObjectiveError(ValueError):
    """An objective's own exception type."""


def raises_own(point: dict[str, Any]) -> float:
    """Always raise :class:`ObjectiveError` naming ``x``."""
    raise ObjectiveError(f"x={point['x']} is out of range")


class UnpicklableError(RuntimeError):
    """An exception holding a lock, so it cannot be pickled."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def raises_unpicklable(point: dict[str, Any]) -> float:
    """Always raise :class:`UnpicklableError`."""
    raise UnpicklableError("holds a lock")


def returns_a_predictor(point: dict[str, Any]) -> dict[str, Any]:
    """A result holding a lambda (a fitted model's predict), as hyperopt users return."""
    scale = point["x"]
    return {"loss": scale**2, "status": "ok", "predict": lambda z: z * scale}
