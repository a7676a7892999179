"""``oracle``: the limit. Knows the table and the hidden per-family speeds.

Two kinds of policy: per-target plans (``targets``: each class keeps running
the subspace that reaches the next unreached target soonest in median, see
:mod:`._oracle_plan`) and, with no target left, greedy expected improvement
per second. The benchmark runs one oracle per target (its plan, then the
next targets') and reports, per target, the soonest of them.

Not a competitor: no real scheduler knows every recorded loss or the true
speed of every family on every device class. It shows how soon good models
*could* be found on a cluster, so a gain can be read against what was
possible (where even the oracle gains little, hardware cannot matter much).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Mapping, Sequence

import numpy as np

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.scheduling._base import DeviceClassInfo, SubspaceInfo
from hwaware_plugins.scheduling._common import checked_setup, not_set_up, unknown_class
from hwaware_plugins.scheduling._history import History
from hwaware_plugins.scheduling._oracle_plan import (
    first_success_samples,
    plan_for_target,
    regret_allocation,
)

REGRET_LEVELS: tuple[float, ...] = (0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002)
"""Loss quantiles of the table at which the regret policy weighs the chance of a result."""


def expected_improvement(
    sorted_losses: Sequence[float], prefix_sums: Sequence[float], incumbent: float
) -> float:
    """``E[max(incumbent - L, 0)]`` for L drawn uniformly from ``sorted_losses``.

    ``prefix_sums[k]`` is the sum of the k lowest losses (``prefix_sums[0] = 0``).
    Cost: O(log n).
    """
    k = bisect.bisect_left(sorted_losses, incumbent)
    return (k * incumbent - prefix_sums[k]) / len(sorted_losses)


class OracleScheduler:
    """Per-target plans, then greedy expected improvement per second, knowing the truth.

    While some loss in ``targets`` is not reached (the lowest loss finished so
    far is above it), a free slot of class c runs the subspace that the
    plan of the first such target gives c (:func:`plan_for_target`: the
    per-class choice that makes the cluster's median time to the target
    shortest, from the rows' own losses and runtimes). With no target left,
    for a free slot of class c it picks the subspace with the largest
    ``E[max(best - L_s, 0)] / (mean runtime of s / true speed of s's family on c)``,
    where ``best`` is the lowest loss finished so far (the table's worst loss
    before any) and ``L_s`` a recorded row of s drawn uniformly, as the
    simulator draws them. Once nothing can improve (the table's best loss is
    found) every choice is as good; it then takes the slowest subspace, which
    keeps the simulation cheap. Ties (e.g. once the table's best is found) are broken
    at random. Cost per decision: O(1) while the best loss is unchanged, else
    O(S log n).

    The simulator hands it the truth: :meth:`reveal` with every subspace's
    recorded losses and mean reference runtime, and device classes *with*
    their per-family speedups (``sees_speedups``).

    :param seed: seeds the tie-breaking draws and the plans' Monte Carlo draws.
    :param targets: loss targets, in the order they are pursued (empty: the
        expected-improvement policy alone).
    :param regret_horizon_s: when given, ignore ``targets`` and keep, per
        class, the slots on each subspace that :func:`regret_allocation`
        gives for this horizon (the least expected regret area).
    """

    name = "oracle"
    sees_speedups = True
    """Tells the simulator to pass per-family speedups in ``setup``."""

    def __init__(
        self,
        seed: int | None = None,
        *,
        targets: Sequence[float] = (),
        regret_horizon_s: float | None = None,
    ) -> None:
        self.seed = seed
        self.targets = [float(t) for t in targets]
        self.regret_horizon_s = regret_horizon_s
        self._quota: dict[str, list[int]] = {}
        self._launched: dict[str, list[int]] = {}
        self._plans: list[tuple[float, dict[str, int]]] = []
        self._slots: dict[str, int] = {}
        self._rng = random.Random(seed)
        self._subs: list[SubspaceInfo] = []
        self._speeds: dict[str, list[float]] = {}
        self._losses: list[list[float]] = []
        self._prefix: list[list[float]] = []
        self._runtime: list[float] = []
        self._worst = math.inf
        self._cache: dict[str, tuple[float, list[int]]] = {}

    def reveal(
        self,
        losses: Mapping[str, Sequence[float]],
        runtimes: Mapping[str, float | Sequence[float]],
    ) -> None:
        """Take each subspace's recorded losses and runtimes on the reference device.

        ``runtimes[key]``: the rows' runtimes in the order of ``losses[key]``,
        or one mean runtime for every row. Builds the per-target plans.
        Cost: O(targets x S x 2000 x 64) for the plans' Monte Carlo draws.

        :raises ConfigError: a subspace of ``setup`` is missing, has no losses
            or a non-positive runtime.
        """
        if not self._subs:
            raise not_set_up(self.name)
        self._losses, self._prefix, self._runtime = [], [], []
        rows: list[tuple[list[float], list[float]]] = []
        for s in self._subs:
            given = runtimes.get(s.key)
            values = [float(v) for v in losses.get(s.key, ())]
            per_row = [float(given)] * len(values) if isinstance(given, int | float) else given
            if (
                not values
                or per_row is None
                or len(per_row) != len(values)
                or not all(float(r) > 0 for r in per_row)
            ):
                raise ConfigError(
                    f"oracle scheduler: reveal needs losses and runtimes > 0 for {s.key!r}"
                )
            row_runtimes = [float(r) for r in per_row]
            rows.append((values, row_runtimes))
            ordered = sorted(values)
            self._losses.append(ordered)
            self._prefix.append([0.0, *itertools.accumulate(ordered)])
            self._runtime.append(sum(row_runtimes) / len(row_runtimes))
        self._worst = max(values[-1] for values in self._losses)
        self._cache = {}
        self._plans = self._build_plans(rows)
        if self.regret_horizon_s is not None:
            self._quota = self._build_quota(rows, self.regret_horizon_s)
            self._launched = {c: [0] * len(self._subs) for c in self._quota}

    def _build_quota(
        self, rows: Sequence[tuple[list[float], list[float]]], horizon_s: float
    ) -> dict[str, list[int]]:
        rng = np.random.default_rng(self.seed)
        pooled = np.sort(np.concatenate([np.asarray(v) for v, _ in rows]))
        levels = sorted(
            {float(np.quantile(pooled, q)) for q in REGRET_LEVELS} | {float(pooled[0])},
            reverse=True,
        )
        widths = [0.0] + [hi - lo for hi, lo in itertools.pairwise(levels)]
        samples = [
            [first_success_samples(v, r, level, rng=rng, samples=500) for v, r in rows]
            for level in levels
        ]
        names = list(self._speeds)
        counts = regret_allocation(
            samples,
            widths,
            [self._speeds[c] for c in names],
            [self._slots[c] for c in names],
            horizon_s=horizon_s,
        )
        return dict(zip(names, counts, strict=True))

    def _build_plans(
        self, rows: Sequence[tuple[list[float], list[float]]]
    ) -> list[tuple[float, dict[str, int]]]:
        rng = np.random.default_rng(self.seed)
        names = list(self._speeds)
        plans = []
        for target in self.targets:
            samples = [first_success_samples(v, r, target, rng=rng) for v, r in rows]
            picks = plan_for_target(
                samples, [self._speeds[c] for c in names], [self._slots[c] for c in names]
            )
            if picks is not None:
                plans.append((target, dict(zip(names, picks, strict=True))))
        return plans

    def setup(
        self, subspaces: Sequence[SubspaceInfo], device_classes: Sequence[DeviceClassInfo]
    ) -> None:
        """Take the subspaces and the classes' true per-family speeds; call :meth:`reveal` next."""
        subs, classes = checked_setup(self.name, subspaces, device_classes)
        self._subs = subs
        self._speeds = {
            c.name: [float(c.speedup.get(s.family, c.speed)) if s.family else c.speed for s in subs]
            for c in classes
        }
        self._slots = {c.name: c.slots for c in classes}
        self._losses = []
        self._plans = []

    def choose(self, device_class: str, history: History) -> str:
        """The plan's subspace for the first unreached target, else the most EI per second."""
        if not self._subs:
            raise not_set_up(self.name)
        speeds = self._speeds.get(device_class)
        if speeds is None:
            raise unknown_class(self.name, device_class, list(self._speeds))
        if not self._losses:
            raise ConfigError("oracle scheduler: call reveal(losses, runtimes) after setup")
        if self._quota:
            return self._subs[self._by_quota(device_class, history)].key
        best = history.best_loss()
        for target, plan in self._plans:
            if best is None or best > target:
                return self._subs[plan[device_class]].key
        incumbent = self._worst + 1e-12 if best is None else best
        cached = self._cache.get(device_class)
        if cached is None or cached[0] != incumbent:
            cached = (incumbent, self._best_subspaces(speeds, incumbent))
            self._cache[device_class] = cached
        tied = cached[1]
        return self._subs[tied[self._rng.randrange(len(tied))] if len(tied) > 1 else tied[0]].key

    def _by_quota(self, device_class: str, history: History) -> int:
        """The subspace furthest below its share of the class's slots (running trials)."""
        quota, launched = self._quota[device_class], self._launched[device_class]
        gaps = [
            quota[s] - (launched[s] - history.count(sub.key, device_class))
            for s, sub in enumerate(self._subs)
        ]
        top = max(gaps)
        tied = [s for s, g in enumerate(gaps) if g == top]
        pick = tied[self._rng.randrange(len(tied))] if len(tied) > 1 else tied[0]
        launched[pick] += 1
        return pick

    def _best_subspaces(self, speeds: Sequence[float], incumbent: float) -> list[int]:
        scores = [
            expected_improvement(self._losses[s], self._prefix[s], incumbent)
            * speeds[s]
            / self._runtime[s]
            for s in range(len(self._subs))
        ]
        top = max(scores)
        if top <= 0:  # nothing can improve: any choice is as good; the slowest costs
            # the simulation the fewest events
            scores = [self._runtime[s] / speeds[s] for s in range(len(self._subs))]
            top = max(scores)
        return [s for s, v in enumerate(scores) if v >= top * (1 - 1e-12)]
