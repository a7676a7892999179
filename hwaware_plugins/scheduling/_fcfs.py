"""``random`` (alias ``fcfs``): uniform subspace, first free device."""

from __future__ import annotations

import random
from collections.abc import Sequence

from hwaware_plugins.scheduling._base import DeviceClassInfo, SubspaceInfo
from hwaware_plugins.scheduling._common import checked_setup, not_set_up, unknown_class
from hwaware_plugins.scheduling._history import History


class RandomScheduler:
    """Any free device takes a subspace drawn uniformly at random.

    No hardware awareness and no use of the history (Optuna's or Hyperopt's
    random search on a conditional space). Every scheduler's regret is
    normalised to this one's. Cost per decision: one random draw.

    :param seed: seeds the draws (``None``: from the OS).
    """

    name = "random"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._keys: list[str] = []
        self._classes: frozenset[str] = frozenset()

    def setup(
        self, subspaces: Sequence[SubspaceInfo], device_classes: Sequence[DeviceClassInfo]
    ) -> None:
        """Remember the subspace keys and the class names."""
        subs, classes = checked_setup(self.name, subspaces, device_classes)
        self._keys = [s.key for s in subs]
        self._classes = frozenset(c.name for c in classes)

    def choose(self, device_class: str, history: History) -> str:
        """A subspace key drawn uniformly at random, whatever the device class."""
        if not self._keys:
            raise not_set_up(self.name)
        if device_class not in self._classes:
            raise unknown_class(self.name, device_class, sorted(self._classes))
        return self._keys[self._rng.randrange(len(self._keys))]


FcfsScheduler = RandomScheduler
"""The old name (``fcfs``: first come, first served) of :class:`RandomScheduler`."""
