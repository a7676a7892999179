"""The pure control rules: merge weights, batch-size control, lr and AdaSync's K."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.training import (
    CostModel,
    adasync_k,
    adjust_batch_sizes,
    merge_weights,
    plan_round,
)
from hwaware_plugins.training._control import scaled_lr, warmup_factor


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=16).filter(any))
def test_merge_weights_sum_to_one_and_follow_the_work(counts: list[int]) -> None:
    weights = merge_weights(counts)
    assert math.isclose(sum(weights), 1.0)
    total = sum(counts)
    for n, p in zip(counts, weights, strict=True):
        assert math.isclose(p, n / total)
    # More batches never means a smaller weight.
    pairs = sorted(zip(counts, weights, strict=True))
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(pairs))


def test_merge_weights_reject_empty_rounds_and_negative_counts() -> None:
    with pytest.raises(ConfigError, match="no rank ran a batch"):
        merge_weights([0, 0])
    with pytest.raises(ConfigError, match=">= 0"):
        merge_weights([3, -1])


def test_controller_grows_busy_ranks_and_shrinks_idle_ones_within_bounds() -> None:
    sizes = adjust_batch_sizes([32, 32, 32], [0.6, 0.3, 0.1], b_min=8, b_max=36, step=8)
    assert sizes == [36, 24, 24]
    assert adjust_batch_sizes([8, 8], [0.1, 0.9], b_min=8, b_max=64, step=4) == [8, 12]
    # An exactly even round changes nothing.
    assert adjust_batch_sizes([20, 30, 40], [1 / 3] * 3, b_min=1, b_max=99, step=5) == [20, 30, 40]


def test_controller_rejects_bad_bounds() -> None:
    with pytest.raises(ConfigError, match="b_min"):
        adjust_batch_sizes([4], [1.0], b_min=8, b_max=4, step=1)
    with pytest.raises(ConfigError, match="merge weights"):
        adjust_batch_sizes([4, 4], [1.0], b_min=1, b_max=8, step=1)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from([1.0, 1.5, 2.0, 3.0, 4.0]), min_size=2, max_size=4))
def test_controller_converges_to_equal_update_counts(slowdowns: list[float]) -> None:
    """Simulated devices of different speeds end up doing about the same number of updates."""
    cost = CostModel(per_batch_s=0.0, per_sample_s=1.0)
    n = len(slowdowns)
    sizes = [32] * n
    first = plan_round([0.0] * n, sizes, 32 * 16 * n, slowdowns=slowdowns, cost=cost).batches
    recent: list[list[int]] = []
    for _ in range(100):
        plan = plan_round([0.0] * n, sizes, 32 * 16 * n, slowdowns=slowdowns, cost=cost)
        recent = [*recent[-19:], plan.batches]
        sizes = adjust_batch_sizes(sizes, merge_weights(plan.batches), b_min=1, b_max=512, step=2)
    # Steady state: the controller oscillates by one step, so average the last 20 rounds.
    mean = [sum(r[i] for r in recent) / len(recent) for i in range(n)]
    assert max(mean) <= 1.1 * min(mean), (slowdowns, sizes, mean)
    if max(slowdowns) >= 2 * min(slowdowns):
        assert max(first) > 1.4 * min(first)  # it was uneven before the controller acted
    # Faster devices carry bigger batches.
    for a in range(n):
        for b in range(n):
            if slowdowns[a] < slowdowns[b]:
                assert sizes[a] > sizes[b]


def test_linear_scaling_and_warmup() -> None:
    assert scaled_lr(0.1, 64, 32) == pytest.approx(0.2)
    assert [warmup_factor(r, 4) for r in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0


def test_adasync_k_grows_as_the_loss_falls_and_is_capped() -> None:
    assert adasync_k(1, 8, 2.0, 2.0) == 1
    assert adasync_k(1, 8, 2.0, 0.5) == 2
    assert adasync_k(2, 8, 2.0, 0.02) == 8
    assert adasync_k(1, 4, 2.0, 0.0) == 4
