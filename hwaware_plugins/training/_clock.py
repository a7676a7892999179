"""Time as the training policies see it: a deterministic virtual clock, or real time.

The virtual clock keeps every rank's time on every rank (a replicated vector):
batch costs come from a :class:`~hwaware_plugins.training.CostModel` and the
known slowdowns, so each rank computes everyone's progress without talking.
The real clock measures each batch and sleeps ``(slowdown - 1)`` times as long
to imitate a slower device; waits happen in the collectives themselves.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from hwaware_plugins.training._dispatch import CostModel, RoundPlan, plan_round


class VirtualTimeline:
    """Replicated virtual time of every rank. Pure bookkeeping; not thread-safe."""

    def __init__(self, slowdowns: Sequence[float], cost: CostModel) -> None:
        self.slowdowns = tuple(slowdowns)
        self.cost = cost
        self.times = [0.0] * len(self.slowdowns)

    def now(self, rank: int) -> float:
        """Rank ``rank``'s virtual time in seconds."""
        return self.times[rank]

    def batch_cost(self, rank: int, size: int) -> float:
        """Virtual seconds a batch of ``size`` samples takes on ``rank``."""
        return self.cost.batch_cost(size, self.slowdowns[rank])

    def plan(self, sizes: Sequence[int], round_samples: int) -> RoundPlan:
        """Dynamic dispatch of a round from the ranks' current times (see ``plan_round``)."""
        return plan_round(
            self.times, sizes, round_samples, slowdowns=self.slowdowns, cost=self.cost
        )

    def merge(self, ranks: Sequence[int] | None = None, *, arrivals: Sequence[float] = ()) -> None:
        """Ranks meet at a merge: all wait for the slowest arrival, then pay the merge cost."""
        members = list(range(len(self.times))) if ranks is None else list(ranks)
        if arrivals:
            for rank in members:
                self.times[rank] = arrivals[rank]
        meet = max(self.times[r] for r in members)
        extra = self.cost.per_merge_s if len(members) > 1 else 0.0
        for rank in members:
            self.times[rank] = meet + extra

    def step_groups(self, groups: Sequence[Sequence[int]], sizes: Sequence[int]) -> None:
        """Every rank runs one batch; each group then averages (waits for its slowest)."""
        for rank, size in enumerate(sizes):
            self.times[rank] += self.batch_cost(rank, size)
        for group in groups:
            self.merge(group)

    def step_fastest(self, k: int, size: int) -> list[int]:
        """K-sync: all start together; the step ends when the ``k`` fastest are done.

        Returns the ranks whose gradients count (ties to the lower rank).
        """
        start = max(self.times)
        costs = [self.batch_cost(rank, size) for rank in range(len(self.times))]
        order = sorted(range(len(costs)), key=lambda r: (costs[r], r))
        chosen = sorted(order[:k])
        end = start + costs[order[k - 1]] + (self.cost.per_merge_s if len(costs) > 1 else 0.0)
        self.times = [end] * len(self.times)
        return chosen


class RealTimeline:
    """Wall-clock time since the job's start, with sleeps imitating slower devices."""

    def __init__(self, slowdown: float) -> None:
        self.slowdown = slowdown
        self.t0 = time.monotonic()
        self._batch_start = self.t0

    def now(self, rank: int = 0) -> float:
        """Seconds since this timeline started (``rank`` is ignored: only our own time)."""
        return time.monotonic() - self.t0

    def batch_started(self) -> None:
        """Mark the start of a batch's compute."""
        self._batch_start = time.monotonic()

    @property
    def batch_start(self) -> float:
        """``time.monotonic()`` when the current batch started."""
        return self._batch_start

    def elapsed(self) -> float:
        """Seconds since the batch started."""
        return time.monotonic() - self._batch_start

    def batch_done(self) -> float:
        """Sleep so the batch took ``slowdown`` times its compute; return its slowed cost."""
        compute = self.elapsed()
        self.sleep_until(self._batch_start + compute * self.slowdown)
        return compute * self.slowdown

    def sleep_until(self, moment: float) -> None:
        """Sleep until ``time.monotonic()`` reaches ``moment`` (no-op if past)."""
        delay = moment - time.monotonic()
        if delay > 0:
            time.sleep(delay)
