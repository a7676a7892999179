"""The scheduler contract: which subspace should the next trial on this device class sample?

Schedulers are built by name through the plugin registry
(``hwaware_plugins.load("scheduler", "hwaware", seed=0)``) and used by the
adapters, the executors and the simulator alike:

1. ``setup(subspaces, device_classes)`` once (and again whenever either changes);
2. ``choose(device_class, history)`` each time a slot of that class asks for work;
3. the caller records every finished trial in the :class:`History` it passes.

Thread-safety: a scheduler is not thread-safe by itself; callers that share one
between threads hold a lock around ``setup`` and ``choose``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from hwaware_plugins.scheduling._history import History


@dataclass(frozen=True)
class SubspaceInfo:
    """What a scheduler knows of a subspace before any trial ran.

    :param key: stable identifier, e.g. ``"svm/kernel=rbf"``.
    :param complexity: the value of the active complexity rule (higher = larger space).
    :param family: the workload family (matches ``[device.speedup]`` keys), if known.
    """

    key: str
    complexity: float = 1.0
    family: str | None = None


@dataclass(frozen=True)
class DeviceClassInfo:
    """A group of interchangeable devices.

    :param name: the device class name (``Device.device_class``).
    :param speed: relative speed (declared or measured).
    :param slots: how many trials the class can run at once.
    :param speedup: declared per-family speeds; a scheduler must not assume they
        are known (``hwaware`` learns runtimes from the history instead).
    """

    name: str
    speed: float = 1.0
    slots: int = 1
    speedup: Mapping[str, float] = field(default_factory=dict)


@runtime_checkable
class Scheduler(Protocol):
    """Chooses the subspace the next trial on a device class samples from."""

    name: str

    def setup(
        self, subspaces: Sequence[SubspaceInfo], device_classes: Sequence[DeviceClassInfo]
    ) -> None:
        """Take the subspaces and device classes; may be called again when they change."""

    def choose(self, device_class: str, history: History) -> str:
        """Return the key of the subspace the next trial on ``device_class`` samples.

        Must be fast (the benchmark bound is 1 ms median with 10,000 trials of
        history) and must return one of the keys given to :meth:`setup`.
        """
        ...
