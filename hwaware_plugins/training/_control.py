"""Pure control rules of the training policies: merge weights, batch sizes, lr, K.

No torch here: these are the algorithms, tested on their own; the policies are
thin adapters that feed them counts and losses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from hwaware_plugins.errors import ConfigError


def merge_weights(batches: Sequence[int]) -> list[float]:
    """Return ``p_i = n_i / sum_j n_j``, the weight of each rank's model at a merge.

    ``batches[i]`` is the number of batches rank ``i`` ran this round. The
    weights are non-negative and sum to 1. Cost: O(N).

    :raises ConfigError: a count is negative, or no rank ran any batch.
    """
    if any(n < 0 for n in batches):
        raise ConfigError(f"batch counts must be >= 0, got {list(batches)}")
    total = sum(batches)
    if total <= 0:
        raise ConfigError("no rank ran a batch this round; make the round at least one batch long")
    return [n / total for n in batches]


def adjust_batch_sizes(
    sizes: Sequence[int],
    weights: Sequence[float],
    *,
    b_min: int,
    b_max: int,
    step: int,
) -> list[int]:
    """One step of the adaptive batch-size controller.

    A rank that did more than its share of the updates (``p_i > 1/N``) grows
    its batch by ``step`` (up to ``b_max``); one that did less shrinks it (down
    to ``b_min``). In steady state every rank does the same number of updates
    per round. Cost: O(N).

    :raises ConfigError: lengths differ, or the bounds are inconsistent.
    """
    if len(sizes) != len(weights):
        raise ConfigError(f"got {len(sizes)} batch sizes but {len(weights)} merge weights")
    if not 1 <= b_min <= b_max or step < 1:
        raise ConfigError(
            f"need 1 <= b_min <= b_max and step >= 1, got b_min={b_min}, b_max={b_max}, "
            f"step={step}"
        )
    share = 1.0 / len(sizes)
    # Weights are ratios of integers: compare with a tolerance so that an
    # exactly even round does not flip every batch size.
    tol = 1e-9
    new: list[int] = []
    for b, p in zip(sizes, weights, strict=True):
        if p > share + tol and b < b_max:
            b = min(b_max, b + step)
        elif p < share - tol and b > b_min:
            b = max(b_min, b - step)
        new.append(b)
    return new


def scaled_lr(lr0: float, samples_per_update: int, b_ref: int, *, warmup: float = 1.0) -> float:
    """Linear scaling rule: ``lr0 * samples_per_update / b_ref``, times a warm-up factor.

    ``warmup`` is in ``(0, 1]``; use :func:`warmup_factor` to compute it.
    """
    return lr0 * samples_per_update / b_ref * warmup


def warmup_factor(round_index: int, warmup_rounds: int) -> float:
    """Linear warm-up: ``(round_index + 1) / warmup_rounds`` during warm-up, then 1."""
    if warmup_rounds <= 0 or round_index >= warmup_rounds:
        return 1.0
    return (round_index + 1) / warmup_rounds


def adasync_k(k0: int, world_size: int, initial_loss: float, loss: float) -> int:
    """AdaSync's rule ``K = min(P, ceil(K0 * sqrt(F(w_0) / F(w_t))))``, at least 1.

    A non-positive or non-finite current loss (the model has converged, or the
    loss is not a loss) gives ``K = P``: wait for everyone.
    """
    if not math.isfinite(loss) or loss <= 0 or not math.isfinite(initial_loss):
        return world_size
    k = math.ceil(k0 * math.sqrt(max(initial_loss, 0.0) / loss))
    return max(1, min(world_size, k))
