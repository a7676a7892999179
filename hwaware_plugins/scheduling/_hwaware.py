"""``hwaware``: learned runtimes, comparative-advantage placement, promise, no starvation."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.scheduling._base import DeviceClassInfo, SubspaceInfo
from hwaware_plugins.scheduling._common import checked_setup, not_set_up, unknown_class
from hwaware_plugins.scheduling._history import History
from hwaware_plugins.scheduling._hwaware_model import (
    allocate,
    decision_weights,
    promise,
    runtime_estimates,
)


class HwawareScheduler:
    """Places subspaces where they run comparatively fastest, weighted by promise.

    Every ``refresh_every`` new records it rebuilds a plan (O(S x C^2 + S log n)):

    - runtime of each (subspace, class) from the history, shrunk toward a prior
      from the declared class speed and the subspace's runtimes on other classes
      (:func:`~hwaware_plugins.scheduling._hwaware_model.runtime_estimates`);
      per-family speedups are never assumed known;
    - promise of each subspace: an upper confidence bound on the chance that its
      next trial lands among the best ``top_fraction`` of all results so far;
    - device-time shares per class by comparative advantage, with at least
      ``floor`` of the cluster's device time for every subspace
      (:func:`~hwaware_plugins.scheduling._hwaware_model.allocate`).

    A decision between refreshes is one seeded draw from the class's plan:
    O(log S), microseconds, whatever the history size.

    :param seed: seeds the draws.
    :param floor: device-time share guaranteed to each subspace (capped at 1/S).
    :param top_fraction: what counts as a hit (the best fraction of results).
    :param optimism: standard errors added to the hit-rate estimate.
    :param sharpness: how strongly shares follow promise per device second.
    :param prior_strength: pseudo-trials of the runtime prior.
    :param refresh_every: new records between plan rebuilds.
    """

    name = "hwaware"

    def __init__(
        self,
        seed: int | None = None,
        *,
        floor: float = 0.02,
        top_fraction: float = 0.05,
        optimism: float = 1.0,
        sharpness: float = 2.0,
        prior_strength: float = 2.0,
        refresh_every: int = 10,
    ) -> None:
        self.seed = seed
        self.floor = floor
        self.top_fraction = top_fraction
        self.optimism = optimism
        self.sharpness = sharpness
        self.prior_strength = prior_strength
        self.refresh_every = refresh_every
        self._rng = random.Random(seed)
        self._keys: list[str] = []
        self._classes: list[DeviceClassInfo] = []
        self._plan: dict[str, tuple[list[str], list[float]]] = {}
        self._planned_at = -1
        self._shares: list[list[float]] = []

    def setup(
        self, subspaces: Sequence[SubspaceInfo], device_classes: Sequence[DeviceClassInfo]
    ) -> None:
        """Take the subspaces and classes; the plan is rebuilt on the next decision."""
        subs, classes = checked_setup(self.name, subspaces, device_classes)
        for name, value in (("floor", self.floor), ("top_fraction", self.top_fraction)):
            if not 0 <= value <= 1:
                raise ConfigError(f"hwaware scheduler: {name} must be in [0, 1], got {value}")
        if self.refresh_every < 1:
            raise ConfigError(
                f"hwaware scheduler: refresh_every must be >= 1, got {self.refresh_every}"
            )
        self._keys = [s.key for s in subs]
        self._classes = classes
        self._planned_at = -1

    def choose(self, device_class: str, history: History) -> str:
        """A subspace for a free slot of ``device_class`` (O(log S) between plan rebuilds)."""
        if not self._keys:
            raise not_set_up(self.name)
        if len(self._keys) == 1:
            if all(c.name != device_class for c in self._classes):
                raise unknown_class(self.name, device_class, [c.name for c in self._classes])
            return self._keys[0]
        size = len(history)
        if self._planned_at < 0 or size - self._planned_at >= self.refresh_every:
            self._rebuild(history)
            self._planned_at = size
        plan = self._plan.get(device_class)
        if plan is None:
            raise unknown_class(self.name, device_class, [c.name for c in self._classes])
        keys, cumulative = plan
        index = bisect.bisect_right(cumulative, self._rng.random() * cumulative[-1])
        return keys[min(index, len(keys) - 1)]

    def shares(self) -> dict[str, dict[str, float]]:
        """The current plan's device-time share per class and subspace (for reports, tests)."""
        return {
            c.name: dict(zip(self._keys, row, strict=True))
            for c, row in zip(self._classes, self._shares, strict=True)
        }

    def _rebuild(self, history: History) -> None:
        keys, classes = self._keys, self._classes
        counts = [[history.count(k, c.name) for c in classes] for k in keys]
        sums = [[history.runtime_sum(k, c.name) for c in classes] for k in keys]
        runtimes = runtime_estimates(
            counts, sums, [c.speed for c in classes], strength=self.prior_strength
        )
        n_done = history.n_complete
        threshold = history.kth_best_loss(math.ceil(self.top_fraction * n_done))
        promises = [
            promise(
                0 if threshold is None else history.count_losses_at_most(k, threshold),
                sum(counts[i]),
                base_rate=self.top_fraction,
                optimism=self.optimism,
            )
            for i, k in enumerate(keys)
        ]
        values = [[p / r for r in row] for p, row in zip(promises, runtimes, strict=True)]
        self._shares = allocate(
            values, runtimes, [c.slots for c in classes], floor=self.floor, sharpness=self.sharpness
        )
        self._plan = {}
        for ci, c in enumerate(classes):
            weights = decision_weights(self._shares[ci], [row[ci] for row in runtimes])
            self._plan[c.name] = (list(keys), list(itertools.accumulate(weights)))
