"""What every policy run shares: the model, optimizer, data stream, clock and lr rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwaware_plugins.training._clock import RealTimeline, VirtualTimeline
from hwaware_plugins.training._control import scaled_lr, warmup_factor
from hwaware_plugins.training._dispatch import StoreCursor
from hwaware_plugins.training._merge import ModelMerger


class SampleStream:
    """An endless stream of sample indices: one seeded permutation per epoch.

    Position ``c`` of the stream is sample ``perm_e[c % n]`` with ``e = c // n``,
    identical on every rank. Cost: one ``randperm(n)`` per epoch touched
    (the two most recent are cached).
    """

    def __init__(self, num_samples: int, seed: int) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self._cache: dict[int, Any] = {}

    def _perm(self, epoch: int) -> Any:
        perm = self._cache.get(epoch)
        if perm is None:
            import torch

            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(self.num_samples, generator=generator)
            self._cache = {e: p for e, p in self._cache.items() if e >= epoch - 1}
            self._cache[epoch] = perm
        return perm

    def take(self, start: int, stop: int) -> Any:
        """Indices at stream positions ``[start, stop)`` as a 1-D int64 tensor."""
        import torch

        pieces = []
        while start < stop:
            epoch, offset = divmod(start, self.num_samples)
            end = min(stop - start, self.num_samples - offset) + offset
            pieces.append(self._perm(epoch)[offset:end])
            start += end - offset
        return torch.cat(pieces) if len(pieces) != 1 else pieces[0]


@dataclass
class Shared:
    """The state one rank's policy run works on (built by ``AdaptiveSGD``)."""

    rank: int
    world_size: int
    model: Any
    optimizer: Any
    merger: ModelMerger
    stream: SampleStream
    batch_size: int
    b_ref: int
    lr0: float
    warmup_rounds: int
    round_samples: int
    seed: int
    device: Any = None
    virtual: VirtualTimeline | None = None
    real: RealTimeline | None = None
    cursor: StoreCursor | None = None
    lr: float = field(default=0.0)
    applied: float = field(default=0.0)

    def set_lr(self, samples_per_update: int, round_index: int) -> None:
        """Apply the linear scaling rule (with warm-up) to every parameter group.

        Each group keeps its own rate relative to the first one (``lr0`` is the
        first group's base), and what a learning-rate scheduler changed since the
        last round is kept: the factor applied last time is divided out before
        the new one is applied.
        """
        warm = warmup_factor(round_index, self.warmup_rounds)
        factor = scaled_lr(1.0, samples_per_update, self.b_ref, warmup=warm)
        groups = self.optimizer.param_groups
        if self.applied <= 0:  # the first round: from the groups' rates at set-up
            first = float(groups[0]["lr"])
            for group in groups:
                ratio = float(group["lr"]) / first if first else 1.0
                group["lr"] = self.lr0 * ratio * factor
        else:
            for group in groups:
                group["lr"] = float(group["lr"]) / self.applied * factor
        self.applied = factor
        self.lr = float(groups[0]["lr"])

    def now(self) -> float:
        """This rank's time in seconds (virtual or real)."""
        if self.virtual is not None:
            return self.virtual.now(self.rank)
        assert self.real is not None
        return self.real.now()

    def batch_started(self) -> None:
        """Start timing a batch (real clock only)."""
        if self.real is not None:
            self.real.batch_started()
