"""``shadho``: a faithful reproduction of SHADHO's scheduler (with its priority bug fixed).

Per decision: the device class's ranked subspaces are drawn with truncated
Planck weights. Every ``rerank_every`` completed trials: each subspace with at
least ``refresh_every`` new results gets a new GP priority
(:func:`~hwaware_plugins.scheduling._gp_priority.length_scale_spread` on its
last ``max_points`` results), subspaces are re-ranked by complexity x priority
and banded onto the classes ordered fastest first by declared speed.

Cost: a decision without re-ranking is O(log S); a priority refresh is
``n_fits`` GP fits on at most ``0.8 * max_points`` points (tens to hundreds of
ms), so the amortised cost is about ``n_fits / refresh_every`` fits per trial.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

import numpy as np

from hwaware_plugins.scheduling._base import DeviceClassInfo, SubspaceInfo
from hwaware_plugins.scheduling._common import checked_setup, not_set_up, unknown_class
from hwaware_plugins.scheduling._gp_priority import design_matrix, length_scale_spread
from hwaware_plugins.scheduling._history import History
from hwaware_plugins.scheduling._shadho_rules import banding, planck_weights, shadho_order


class ShadhoScheduler:
    """SHADHO: complexity x GP-uncertainty ranking, banded onto speed-ordered classes.

    :param seed: seeds the GP subsets, initial length scales and Planck draws.
    :param n_fits: GP fits per priority refresh (SHADHO: 50).
    :param train_fraction: share of the results each fit sees (SHADHO: 0.8).
    :param refresh_every: new results of a subspace before its priority is refitted.
    :param rerank_every: completed trials between re-rankings.
    :param max_points: only the last ``max_points`` results enter a fit (cost bound).
    :param planck_rate: the ``0.5`` of ``p_k ~ exp(-0.5 k)``.
    :param fitted: read the fitted kernel (``True``) or, like SHADHO's reference
        code, the unfitted one (``False``).
    """

    name = "shadho"

    def __init__(
        self,
        seed: int | None = None,
        *,
        n_fits: int = 50,
        train_fraction: float = 0.8,
        refresh_every: int = 10,
        rerank_every: int = 10,
        max_points: int = 12,
        planck_rate: float = 0.5,
        fitted: bool = True,
    ) -> None:
        self.seed = seed
        self.n_fits = n_fits
        self.train_fraction = train_fraction
        self.refresh_every = refresh_every
        self.rerank_every = rerank_every
        self.max_points = max_points
        self.planck_rate = planck_rate
        self.fitted = fitted
        self._rng = np.random.default_rng(seed)
        self._subspaces: list[SubspaceInfo] = []
        self._class_names: list[str] = []
        self._priorities: list[float] = []
        self._fitted_at: list[int] = []
        self._ranked_at = -1
        self._plans: dict[str, tuple[list[str], list[float]]] = {}

    def setup(
        self, subspaces: Sequence[SubspaceInfo], device_classes: Sequence[DeviceClassInfo]
    ) -> None:
        """Order the classes fastest first (declared speed, ties by name) and rank once."""
        subs, classes = checked_setup(self.name, subspaces, device_classes)
        self._subspaces = subs
        self._class_names = [c.name for c in sorted(classes, key=lambda c: (-c.speed, c.name))]
        self._priorities = [0.0] * len(subs)
        self._fitted_at = [0] * len(subs)
        self._ranked_at = -1
        self._rerank()

    @property
    def priorities(self) -> dict[str, float]:
        """The current priority of every subspace (0.0 until its first fit)."""
        return {s.key: p for s, p in zip(self._subspaces, self._priorities, strict=True)}

    def choose(self, device_class: str, history: History) -> str:
        """Draw from the class's band with Planck weights; re-rank every ``rerank_every``."""
        if not self._subspaces:
            raise not_set_up(self.name)
        done = history.n_complete
        if self._ranked_at < 0 or done - self._ranked_at >= self.rerank_every:
            self._refresh_priorities(history)
            self._rerank()
            self._ranked_at = done
        plan = self._plans.get(device_class)
        if plan is None:
            raise unknown_class(self.name, device_class, self._class_names)
        keys, cumulative = plan
        index = bisect.bisect_right(cumulative, float(self._rng.random()) * cumulative[-1])
        return keys[min(index, len(keys) - 1)]

    def _refresh_priorities(self, history: History) -> None:
        for i, sub in enumerate(self._subspaces):
            n = history.count(sub.key, complete=True)
            if n - self._fitted_at[i] < self.refresh_every:
                continue
            params, losses = history.params_and_losses(sub.key, last=self.max_points)
            self._priorities[i] = length_scale_spread(
                design_matrix(params),
                losses,
                rng=self._rng,
                n_fits=self.n_fits,
                train_fraction=self.train_fraction,
                fitted=self.fitted,
            )
            self._fitted_at[i] = n

    def _rerank(self) -> None:
        order = shadho_order([s.complexity for s in self._subspaces], self._priorities)
        ranked = [self._subspaces[i].key for i in order]
        bands = banding(len(ranked), len(self._class_names))
        self._plans = {}
        for name, band in zip(self._class_names, bands, strict=True):
            keys = [ranked[pos] for pos in band]
            weights = planck_weights(len(keys), self.planck_rate)
            self._plans[name] = (keys, list(itertools.accumulate(weights)))
