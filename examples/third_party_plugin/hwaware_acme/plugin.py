"""The plugin module: plain functions marked with ``hookimpl``, found through an entry point."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hwaware_plugins import Component, hookimpl
from hwaware_plugins.hardware import Device
from hwaware_plugins.scheduling._base import DeviceClassInfo, SubspaceInfo


@dataclass(frozen=True)
class PowerOfTwo:
    """A distribution over 2**low_exp, 2**(low_exp+1), ..., 2**high_exp."""

    low_exp: int
    high_exp: int


class RoundRobinScheduler:
    """Hands out subspaces in turn, ignoring hardware: the simplest possible scheduler."""

    name = "round-robin"

    def __init__(self, *, seed: int | None = None) -> None:
        self.seed = seed
        self._keys: list[str] = []
        self._next = 0

    def setup(
        self, subspaces: Sequence[SubspaceInfo], device_classes: Sequence[DeviceClassInfo]
    ) -> None:
        self._keys = [s.key for s in subspaces]
        self._next = 0

    def choose(self, device_class: str, history: Any) -> str:
        key = self._keys[self._next % len(self._keys)]
        self._next += 1
        return key


@hookimpl
def hwaware_discover_devices(config: Mapping[str, Any]) -> list[Device] | None:
    spec = os.environ.get("ACME_ACCELERATORS", "")
    if not spec:
        return None
    devices = []
    for index, item in enumerate(spec.split(",")):
        name, _, memory_gb = item.partition(":")
        devices.append(
            Device(
                id=f"acme:{index}",
                kind="gpu",
                name=name,
                memory_total_mb=int(float(memory_gb or 0) * 1024),
                memory_free_mb=int(float(memory_gb or 0) * 1024),
                speed=2.0,
            )
        )
    return devices


@hookimpl
def hwaware_distribution_complexity(distribution: Any, rule: str) -> float | None:
    if not isinstance(distribution, PowerOfTwo):
        return None
    n_values = distribution.high_exp - distribution.low_exp + 1
    if rule == "shadho":
        return 2.0 - 1.0 / n_values  # SHADHO's rule for a discrete domain of n values
    return math.log(n_values)  # hwaware: log of the number of distinguishable values


@hookimpl
def hwaware_register_components() -> list[Component]:
    return [
        Component(
            kind="scheduler",
            name="round-robin",
            factory=RoundRobinScheduler,
            description="subspaces in turn (example plugin)",
        )
    ]
