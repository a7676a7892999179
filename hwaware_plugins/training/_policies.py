"""The four training policies behind ``AdaptiveSGD``: options objects and their per-rank runs.

A policy object only holds options (cheap, picklable, registered by name);
``policy.start(shared)`` builds the run that one rank drives: ``batches``
yields this rank's index batches for a round and merges at its end, ``step``
replaces ``optimizer.step()``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.training._control import adasync_k, adjust_batch_sizes, merge_weights
from hwaware_plugins.training._merge import average_gradients
from hwaware_plugins.training._shared import Shared


class PolicyRun(Protocol):
    """One rank's side of a policy (built by :meth:`Policy.start`)."""

    batch_size: int
    updates: int

    def round_length(self) -> int:
        """Stream positions one round consumes."""

    def batches(self, round_index: int, base: int, stopped: Callable[[], bool]) -> Iterator[Any]:
        """Yield this rank's index batches for the round, then merge."""

    def step(self, loss: Any) -> None:
        """Apply the local update (and any per-step averaging)."""


class Policy(Protocol):
    """A named set of options that starts a :class:`PolicyRun` on each rank."""

    name: str

    def start(self, shared: Shared) -> PolicyRun:
        """Validate the options and build this rank's run (collective for ds-sync)."""


def _count_all(shared: Shared, mine: int) -> list[int]:
    """All-reduce one count per rank (everyone learns everyone's)."""
    import torch
    import torch.distributed as dist

    counts = torch.zeros(shared.world_size, dtype=torch.int64, device=shared.device)
    counts[shared.rank] = mine
    dist.all_reduce(counts)
    return [int(c) for c in counts.tolist()]


class AdaptivePolicy:
    """Adaptive SGD: dynamic dispatch, weighted merge per round, batch-size control.

    :param b_min: smallest batch size (default: a quarter of the initial one).
    :param b_max: largest batch size (default: four times the initial one).
    :param batch_step: change per round (default: an eighth of the initial one).
    """

    name = "adaptive"

    def __init__(
        self, *, b_min: int | None = None, b_max: int | None = None, batch_step: int | None = None
    ) -> None:
        self.b_min = b_min
        self.b_max = b_max
        self.batch_step = batch_step

    def start(self, shared: Shared) -> PolicyRun:
        """Build this rank's run; every rank starts at the initial batch size."""
        return _AdaptiveRun(self, shared)


class _AdaptiveRun:
    def __init__(self, policy: AdaptivePolicy, shared: Shared) -> None:
        b = shared.batch_size
        self.b_min = policy.b_min if policy.b_min is not None else max(1, b // 4)
        self.b_max = policy.b_max if policy.b_max is not None else 4 * b
        self.step_size = policy.batch_step if policy.batch_step is not None else max(1, b // 8)
        if not 1 <= self.b_min <= b <= self.b_max or self.step_size < 1:
            raise ConfigError(
                f"adaptive policy needs 1 <= b_min <= batch_size <= b_max and batch_step >= 1, "
                f"got {self.b_min}, {b}, {self.b_max}, {self.step_size}"
            )
        self.shared = shared
        self.sizes = [b] * shared.world_size
        self.batch_size = b
        self.updates = 0

    def round_length(self) -> int:
        return self.shared.round_samples

    def batches(self, round_index: int, base: int, stopped: Callable[[], bool]) -> Iterator[Any]:
        s = self.shared
        self.batch_size = self.sizes[s.rank]
        s.set_lr(self.batch_size, round_index)
        self.updates = 0
        plan = None
        if s.virtual is not None:
            plan = s.virtual.plan(self.sizes, s.round_samples)
            for begin, end in plan.chunks[s.rank]:
                if stopped():
                    break
                yield s.stream.take(base + begin, base + end)
        else:
            assert s.cursor is not None
            while not stopped():
                got = s.cursor.take(round_index, self.batch_size, s.round_samples)
                if got is None:
                    break
                s.batch_started()
                yield s.stream.take(base + got[0], base + got[1])
        counts = _count_all(s, self.updates)
        weights = merge_weights(counts)
        s.merger.merge(weights[s.rank])
        if s.virtual is not None and plan is not None:
            arrivals = [plan.arrival(rank, n) for rank, n in enumerate(counts)]
            s.virtual.merge(arrivals=arrivals)
        self.sizes = adjust_batch_sizes(
            self.sizes, weights, b_min=self.b_min, b_max=self.b_max, step=self.step_size
        )

    def step(self, loss: Any) -> None:
        self.shared.optimizer.step()
        self.updates += 1
        if self.shared.real is not None:
            self.shared.real.batch_done()


class _LockstepRun:
    """Shared part of sync, ds-sync and adasync: every rank one fixed batch per step."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.batch_size = shared.batch_size
        self.updates = 0
        per_step = shared.world_size * shared.batch_size
        self.steps = max(1, math.ceil(shared.round_samples / per_step))

    def round_length(self) -> int:
        return self.steps * self.shared.world_size * self.batch_size

    def samples_per_update(self) -> int:
        return self.batch_size

    def batches(self, round_index: int, base: int, stopped: Callable[[], bool]) -> Iterator[Any]:
        s, b = self.shared, self.batch_size
        self.round_index = round_index
        s.set_lr(self.samples_per_update(), round_index)
        self.updates = 0
        for step in range(self.steps):
            if stopped():
                break
            begin = base + (step * s.world_size + s.rank) * b
            s.batch_started()
            yield s.stream.take(begin, begin + b)
        self.end_round()

    def end_round(self) -> None:
        """Called after the round's last step: the ranks' buffers (BatchNorm statistics,
        which no gradient averages) are made to agree."""
        if self.shared.world_size > 1:
            self.shared.merger.merge_buffers()


class SyncPolicy:
    """Synchronous data-parallel SGD (the baseline): gradients averaged every step.

    :param scale_lr: ``False`` (default): every rank's lr follows the same
        per-rank rule as the other policies, ``lr0 * b / b_ref``, which makes
        the step identical to averaging the models after one local step each.
        ``True``: linear scaling with the global batch, ``lr0 * N * b / b_ref``.
    """

    name = "sync"

    def __init__(self, *, scale_lr: bool = False) -> None:
        self.scale_lr = scale_lr

    def start(self, shared: Shared) -> PolicyRun:
        """Build this rank's run."""
        return _SyncRun(shared, self.scale_lr)


class _SyncRun(_LockstepRun):
    def __init__(self, shared: Shared, scale_lr: bool) -> None:
        super().__init__(shared)
        self.scale_lr = scale_lr

    def samples_per_update(self) -> int:
        return self.batch_size * (self.shared.world_size if self.scale_lr else 1)

    def step(self, loss: Any) -> None:
        s = self.shared
        if s.real is not None:
            s.real.batch_done()
        average_gradients(s.model, 1.0 / s.world_size)
        s.optimizer.step()
        self.updates += 1
        if s.virtual is not None:
            s.virtual.step_groups([range(s.world_size)], [self.batch_size] * s.world_size)


class DSSyncPolicy:
    """DS-Sync: average within groups each step, reshuffling group membership every step.

    :param group_size: ranks per group (the last group may be smaller).
    :param partitions: how many seeded shuffles to cycle through; the process
        groups of all of them are created once, up front.
    """

    name = "ds-sync"

    def __init__(self, *, group_size: int = 2, partitions: int = 16) -> None:
        self.group_size = group_size
        self.partitions = partitions

    def start(self, shared: Shared) -> PolicyRun:
        """Build this rank's run; collective: creates the process groups."""
        if self.group_size < 1 or self.partitions < 1:
            raise ConfigError(
                f"ds-sync needs group_size >= 1 and partitions >= 1, got {self.group_size}, "
                f"{self.partitions}"
            )
        return _DSSyncRun(shared, ds_sync_partitions(
            shared.world_size, self.group_size, self.partitions, seed=shared.seed
        ))


def ds_sync_partitions(
    world_size: int, group_size: int, count: int, *, seed: int
) -> list[list[list[int]]]:
    """``count`` seeded random partitions of the ranks into groups of ``group_size``.

    Pure and deterministic: every rank computes the same list.
    """
    rng = random.Random(seed)
    ranks = list(range(world_size))
    found = []
    for _ in range(count):
        rng.shuffle(ranks)
        found.append([sorted(ranks[i : i + group_size]) for i in range(0, world_size, group_size)])
    return found


class _DSSyncRun(_LockstepRun):
    def __init__(self, shared: Shared, partitions: list[list[list[int]]]) -> None:
        import torch.distributed as dist

        super().__init__(shared)
        self.partitions = partitions
        subsets = sorted({tuple(g) for p in partitions for g in p if len(g) > 1})
        # new_group is collective: every rank creates every group, in one order.
        self.groups = {subset: dist.new_group(list(subset)) for subset in subsets}
        self.iteration = 0

    def samples_per_update(self) -> int:
        return self.batch_size

    def step(self, loss: Any) -> None:
        s = self.shared
        if s.real is not None:
            s.real.batch_done()
        s.optimizer.step()
        self.updates += 1
        partition = self.partitions[self.iteration % len(self.partitions)]
        self.iteration += 1
        mine = next(g for g in partition if s.rank in g)
        if len(mine) > 1:
            s.merger.merge(1.0 / len(mine), group=self.groups[tuple(mine)])
        if s.virtual is not None:
            s.virtual.step_groups(partition, [self.batch_size] * s.world_size)

    def end_round(self) -> None:
        s = self.shared
        s.merger.merge(1.0 / s.world_size)
        if s.virtual is not None:
            s.virtual.merge()


class AdaSyncPolicy:
    """AdaSync: K-sync SGD (average the K fastest gradients) with K growing as loss falls.

    Every ``interval_s`` seconds (default: at each round's end)
    ``K = min(P, ceil(k0 * sqrt(F(w_0) / F(w_t))))`` where F is the training
    loss averaged over the steps since the last update. Needs ``step(loss)``.
    ``scale_lr=True`` scales the lr with ``K`` (``lr0 * K * b / b_ref``);
    by default it is the per-rank ``lr0 * b / b_ref`` of every policy.
    """

    name = "adasync"

    def __init__(
        self, *, k0: int = 1, interval_s: float | None = None, scale_lr: bool = False
    ) -> None:
        self.k0 = k0
        self.interval_s = interval_s
        self.scale_lr = scale_lr

    def start(self, shared: Shared) -> PolicyRun:
        """Build this rank's run."""
        if self.k0 < 1 or (self.interval_s is not None and self.interval_s <= 0):
            raise ConfigError(
                f"adasync needs k0 >= 1 and interval_s > 0, got {self.k0}, {self.interval_s}"
            )
        return _AdaSyncRun(shared, self)


class _AdaSyncRun(_LockstepRun):
    def __init__(self, shared: Shared, policy: AdaSyncPolicy) -> None:
        super().__init__(shared)
        self.policy = policy
        self.k = min(policy.k0, shared.world_size)
        self.initial_loss: float | None = None
        self.window: list[float] = []
        self.last_update = 0.0

    def samples_per_update(self) -> int:
        return self.batch_size * (self.k if self.policy.scale_lr else 1)

    def _fastest(self) -> tuple[list[int], bool]:
        """The ranks whose gradients count this step, and whether K is due an update."""
        s = self.shared
        due = self.policy.interval_s is not None and (
            s.now() - self.last_update >= self.policy.interval_s
        )
        if s.virtual is not None:
            return s.virtual.step_fastest(self.k, self.batch_size), due
        import torch
        import torch.distributed as dist

        assert s.real is not None
        costs = torch.zeros(s.world_size + 1, dtype=torch.float64, device=s.device)
        costs[s.rank] = s.real.elapsed() * s.real.slowdown
        costs[-1] = float(due and s.rank == 0)
        dist.all_reduce(costs)
        values = costs[:-1].tolist()
        order = sorted(range(s.world_size), key=lambda r: (values[r], r))
        kth = values[order[self.k - 1]]
        s.real.sleep_until(s.real.batch_start + min(values[s.rank], kth))
        return sorted(order[: self.k]), bool(costs[-1] > 0)

    def step(self, loss: Any) -> None:
        if loss is None:
            raise ConfigError("the adasync policy needs the batch loss: call step(loss)")
        s = self.shared
        chosen, due = self._fastest()
        weight = 1.0 / self.k if s.rank in chosen else 0.0
        value = float(loss.detach() if hasattr(loss, "detach") else loss)
        (mean_loss,) = average_gradients(s.model, weight, extras=[value])
        s.optimizer.step()
        self.updates += 1
        if self.initial_loss is None:
            self.initial_loss = mean_loss
        self.window.append(mean_loss)
        if due:
            self._update_k()

    def _update_k(self) -> None:
        s = self.shared
        if self.window and self.initial_loss is not None:
            current = sum(self.window) / len(self.window)
            self.k = adasync_k(self.policy.k0, s.world_size, self.initial_loss, current)
        self.window = []
        self.last_update = s.now()
        s.set_lr(self.samples_per_update(), self.round_index)

    def end_round(self) -> None:
        super().end_round()
        if self.policy.interval_s is None:
            self._update_k()


POLICIES: dict[str, type[Any]] = {
    "adaptive": AdaptivePolicy,
    "sync": SyncPolicy,
    "ds-sync": DSSyncPolicy,
    "adasync": AdaSyncPolicy,
}
"""The built-in policies by name."""

