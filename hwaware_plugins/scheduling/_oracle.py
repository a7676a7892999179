"""``oracle``: the limit. Knows the table and the hidden per-family speeds.

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

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.scheduling._base import DeviceClassInfo, SubspaceInfo
from hwaware_plugins.scheduling._common import checked_setup, not_set_up, unknown_class
from hwaware_plugins.scheduling._history import History


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
    """Greedy expected improvement per second with the true loss tables and speeds.

    For a free slot of class c it picks the subspace with the largest
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

    :param seed: seeds the tie-breaking draws.
    """

    name = "oracle"
    sees_speedups = True
    """Tells the simulator to pass per-family speedups in ``setup``."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._subs: list[SubspaceInfo] = []
        self._speeds: dict[str, list[float]] = {}
        self._losses: list[list[float]] = []
        self._prefix: list[list[float]] = []
        self._runtime: list[float] = []
        self._worst = math.inf
        self._cache: dict[str, tuple[float, list[int]]] = {}

    def reveal(self, losses: Mapping[str, Sequence[float]], runtimes: Mapping[str, float]) -> None:
        """Take each subspace's recorded losses and mean runtime on the reference device.

        :raises ConfigError: a subspace of ``setup`` is missing, has no losses
            or a non-positive runtime.
        """
        if not self._subs:
            raise not_set_up(self.name)
        self._losses, self._prefix, self._runtime = [], [], []
        for s in self._subs:
            if s.key not in losses or not len(losses[s.key]) or not runtimes.get(s.key, 0) > 0:
                raise ConfigError(
                    f"oracle scheduler: reveal needs losses and a runtime > 0 for {s.key!r}"
                )
            ordered = sorted(float(v) for v in losses[s.key])
            self._losses.append(ordered)
            self._prefix.append([0.0, *itertools.accumulate(ordered)])
            self._runtime.append(float(runtimes[s.key]))
        self._worst = max(values[-1] for values in self._losses)
        self._cache = {}

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
        self._losses = []

    def choose(self, device_class: str, history: History) -> str:
        """The subspace with the most expected improvement per second on ``device_class``."""
        if not self._subs:
            raise not_set_up(self.name)
        speeds = self._speeds.get(device_class)
        if speeds is None:
            raise unknown_class(self.name, device_class, list(self._speeds))
        if not self._losses:
            raise ConfigError("oracle scheduler: call reveal(losses, runtimes) after setup")
        best = history.best_loss()
        incumbent = self._worst + 1e-12 if best is None else best
        cached = self._cache.get(device_class)
        if cached is None or cached[0] != incumbent:
            cached = (incumbent, self._best_subspaces(speeds, incumbent))
            self._cache[device_class] = cached
        tied = cached[1]
        return self._subs[tied[self._rng.randrange(len(tied))] if len(tied) > 1 else tied[0]].key

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
