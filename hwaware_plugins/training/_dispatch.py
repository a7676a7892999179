"""Dynamic dispatch of a round's samples: the shared cursor, real and virtual.

Whenever a rank finishes a batch it takes its next ``b_i`` samples from a
shared cursor until the round's ``M`` samples are handed out.

- In real time the cursor is a counter in the process group's key-value store
  (``store.add`` is atomic), so ranks take chunks in the order they really ask.
- On the virtual clock the order must follow virtual time, so every rank runs
  the same small event simulation (:func:`plan_round`) on the same inputs and
  gets the same plan: deterministic, and no communication at all.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hwaware_plugins.errors import ConfigError


@dataclass(frozen=True)
class CostModel:
    """Nominal compute cost of a batch on the reference device (slowdown 1).

    A batch of ``b`` samples costs ``slowdown * (per_batch_s + per_sample_s * b)``
    virtual seconds; a merge (one all-reduce) costs ``per_merge_s``.
    Use :meth:`measure` to fit the two costs to a real training step.
    """

    per_batch_s: float = 1e-3
    per_sample_s: float = 5e-5
    per_merge_s: float = 0.0

    def batch_cost(self, batch_size: int, slowdown: float = 1.0) -> float:
        """Virtual seconds a batch of ``batch_size`` samples takes at ``slowdown``."""
        return slowdown * (self.per_batch_s + self.per_sample_s * batch_size)

    def validate(self) -> None:
        """Raise :class:`ConfigError` on a negative or all-zero cost."""
        costs = (self.per_batch_s, self.per_sample_s, self.per_merge_s)
        if min(costs) < 0 or self.per_batch_s + self.per_sample_s <= 0:
            raise ConfigError(
                f"cost model needs non-negative costs and a positive batch cost, got {self}"
            )

    @classmethod
    def measure(
        cls, step: Any, *, sizes: tuple[int, int] = (16, 64), repeats: int = 5
    ) -> CostModel:
        """Fit the model to ``step(batch_size)``, a callable running one training step.

        Times ``repeats`` steps at each of the two ``sizes`` (after one warm-up
        step each) and fits a line through the two medians. Cost: ``2 * (repeats
        + 1)`` steps. The result is then fixed, so a virtual-clock run using it
        is deterministic.
        """
        import statistics
        import time

        small, large = sizes
        if not 0 < small < large:
            raise ConfigError(f"sizes must be two increasing positive ints, got {sizes}")
        medians: list[float] = []
        for size in sizes:
            step(size)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                step(size)
                times.append(time.perf_counter() - start)
            medians.append(statistics.median(times))
        per_sample = max(0.0, (medians[1] - medians[0]) / (large - small))
        per_batch = max(1e-9, medians[0] - per_sample * small)
        return cls(per_batch_s=per_batch, per_sample_s=per_sample)


@dataclass(frozen=True)
class RoundPlan:
    """Which samples of the round each rank runs, and when each batch ends.

    ``chunks[i]`` lists rank ``i``'s ``(start, stop)`` offsets into the round in
    the order it runs them; ``ends[i][j]`` is its virtual time after chunk ``j``;
    ``start[i]`` its time when the round began.
    """

    chunks: tuple[tuple[tuple[int, int], ...], ...]
    ends: tuple[tuple[float, ...], ...]
    start: tuple[float, ...]

    @property
    def batches(self) -> list[int]:
        """Number of batches each rank runs (``n_i``)."""
        return [len(c) for c in self.chunks]

    @property
    def finish(self) -> list[float]:
        """Each rank's virtual time after its last batch of the round."""
        return [self.arrival(rank, len(c)) for rank, c in enumerate(self.chunks)]

    def arrival(self, rank: int, done: int) -> float:
        """Rank's virtual time after running only its first ``done`` batches."""
        return self.ends[rank][done - 1] if done > 0 else self.start[rank]


def plan_round(
    start: Sequence[float],
    sizes: Sequence[int],
    round_samples: int,
    *,
    slowdowns: Sequence[float],
    cost: CostModel,
) -> RoundPlan:
    """Simulate dynamic dispatch of ``round_samples`` samples on the virtual clock.

    Rank ``i`` is free at ``start[i]``; whenever it is free (earliest first,
    ties to the lower rank) it takes the next ``sizes[i]`` samples (fewer at the
    end of the round), which keep it busy for ``cost.batch_cost(b, slowdowns[i])``.
    Pure and deterministic. Cost: O((M / min b) log N).
    """
    n = len(sizes)
    if not (len(start) == len(slowdowns) == n) or n == 0:
        raise ConfigError("start times, batch sizes and slowdowns need one entry per rank")
    if round_samples < 1 or min(sizes) < 1:
        raise ConfigError(
            f"round size and batch sizes must be >= 1, got {round_samples} and {list(sizes)}"
        )
    chunks: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    ends: list[list[float]] = [[] for _ in range(n)]
    free = [(float(t), rank) for rank, t in enumerate(start)]
    heapq.heapify(free)
    cursor = 0
    while cursor < round_samples:
        now, rank = heapq.heappop(free)
        stop = min(round_samples, cursor + sizes[rank])
        chunks[rank].append((cursor, stop))
        done = now + cost.batch_cost(stop - cursor, slowdowns[rank])
        cursor = stop
        ends[rank].append(done)
        heapq.heappush(free, (done, rank))
    return RoundPlan(
        tuple(tuple(c) for c in chunks),
        tuple(tuple(e) for e in ends),
        tuple(float(t) for t in start),
    )


class StoreCursor:
    """The real-time shared cursor: an atomic counter per round in a key-value store.

    ``store`` is a ``torch.distributed.Store`` (TCPStore, FileStore, PrefixStore):
    only its ``add(key, amount) -> int`` is used. Safe across processes and
    threads (the store serialises ``add``). Cost: one store round trip per take.
    """

    def __init__(self, store: Any, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    def take(self, round_index: int, size: int, round_samples: int) -> tuple[int, int] | None:
        """Claim the next ``size`` samples of the round; ``None`` once all are handed out."""
        stop = int(self.store.add(f"{self.prefix}/round{round_index}", size))
        begin = stop - size
        if begin >= round_samples:
            return None
        return begin, min(stop, round_samples)
