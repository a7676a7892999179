"""The oracle's per-target plans and regret allocation: worked examples."""

from __future__ import annotations

import numpy as np

from hwaware_plugins.scheduling._oracle_plan import (
    first_success_samples,
    plan_for_target,
    regret_allocation,
)


def _samples(losses: list[float], runtimes: list[float], target: float) -> np.ndarray | None:
    return first_success_samples(losses, runtimes, target, rng=np.random.default_rng(0))


def test_first_success_time_has_the_wald_mean_and_none_without_a_hit() -> None:
    # a hit one time in four, every row 2 s: E[first success] = 2 / 0.25 = 8 s
    draws = _samples([0.1, 0.5, 0.5, 0.5], [2.0] * 4, 0.2)
    assert draws is not None and abs(float(draws.mean()) - 8.0) < 0.5
    assert draws[0] == 2.0  # never before the hitting row itself ends
    assert _samples([0.5, 0.6], [1.0, 1.0], 0.2) is None


def test_a_plan_sends_each_class_where_it_reaches_the_target_soonest() -> None:
    # a: hits 1 in 2 rows, 10 s each; b: hits 1 in 10, 1 s each (rate 0.1/s vs 0.05/s)
    a = _samples([0.1, 0.9], [10.0, 10.0], 0.2)
    b = _samples([0.1] + [0.9] * 9, [1.0] * 10, 0.2)
    # one slot: b reaches the target sooner; a GPU that runs a 20x faster prefers a
    plan = plan_for_target([a, b], [[1.0, 1.0], [20.0, 1.0]], [1, 1])
    assert plan == [1, 0]
    assert plan_for_target([None, None], [[1.0, 1.0]], [3]) is None


def test_with_many_slots_cheap_hits_in_the_first_wave_win() -> None:
    # a: hits 1 row in 20 but that row takes 0.1 s; b: hits 1 in 2, rows take 1 s.
    # One slot: b's rate (0.5/s) beats a's (about 0.05/s); 200 slots: a's first wave holds
    # about 10 hits of 0.1 s, sooner than b's 1 s.
    a = _samples([0.1] + [0.9] * 19, [0.1] + [1.0] * 19, 0.2)
    b = _samples([0.1, 0.9], [1.0, 1.0], 0.2)
    assert plan_for_target([a, b], [[1.0, 1.0]], [1]) == [1]
    assert plan_for_target([a, b], [[1.0, 1.0]], [200]) == [0]


def test_regret_allocation_spreads_slots_and_fills_every_class() -> None:
    rng = np.random.default_rng(0)
    # fast: quick mediocre results; deep: slow, the only one reaching the low level; the
    # area counts 0.3 x P(no result <= 0.5 yet) + 0.4 x P(none <= 0.1 yet)
    fast, deep = ([0.5, 0.6], [0.1, 0.1]), ([0.1, 0.7], [1.0, 1.0])
    levels = [
        [first_success_samples(*fast, 0.5, rng=rng), first_success_samples(*deep, 0.5, rng=rng)],
        [None, first_success_samples(*deep, 0.1, rng=rng)],
    ]
    speeds = [[1.0, 1.0], [1.0, 1.0]]
    counts = regret_allocation(levels, [0.3, 0.4], speeds, [6, 4], horizon_s=10.0)
    assert [sum(row) for row in counts] == [6, 4]
    assert sum(row[0] for row in counts) >= 1  # a result soon is worth a slot
    assert sum(row[1] for row in counts) >= 5  # most go where the deep losses are
