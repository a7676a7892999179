"""The pure functions behind the ``oracle``'s per-target plans.

To reach a loss target soonest, the oracle fixes, per device class, the one
subspace its slots keep running until the target is reached. A slot that
repeats subspace s draws rows uniformly at random (as the simulator does);
its *first-success time* is the sum of the runtimes of the rows it draws up
to and including the first one whose loss reaches the target. Slots are
independent, so under a plan (class c runs ``s_c``) the chance that nobody
reached the target by time t is ``prod_c (1 - F_{s_c}(t x speed_{c, s_c}))^{n_c}``
with ``F_s`` the first-success distribution of s in reference seconds. For a
fixed t every class maximises its own ``F``, so the plan that reaches the
target soonest in median is found by bisection on t (:func:`plan_for_target`).

Without parallelism this is the rate rule ``p_s x speed / E[runtime_s]``
(Wald: a slot's expected first-success time is ``E[runtime_s] / p_s``); with
150 slots it also favours subspaces whose hits are cheap rows when the
target can fall in the first wave.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

EXACT_MISSES = 64
"""Up to this many misses before the hit are summed row by row; beyond, their sum is
drawn from a normal with the misses' mean and variance (central limit)."""


def first_success_samples(
    losses: Sequence[float],
    runtimes: Sequence[float],
    target: float,
    *,
    rng: np.random.Generator,
    samples: int = 2000,
) -> np.ndarray | None:
    """Sorted draws of one slot's first-success time (reference seconds) on one subspace.

    A draw: misses ``~ Geometric(p) - 1`` (p: the share of rows with ``loss <=
    target``), their runtimes drawn from the missing rows, plus one hitting
    row's runtime. ``None`` when no row reaches the target. Cost:
    O(samples x :data:`EXACT_MISSES`).
    """
    loss = np.asarray(losses, dtype=float)
    runtime = np.asarray(runtimes, dtype=float)
    hit = loss <= target
    p = float(hit.mean())
    if p == 0:
        return None
    hits, misses = runtime[hit], runtime[~hit]
    out = rng.choice(hits, size=samples)
    if misses.size:
        n_miss = rng.geometric(p, size=samples) - 1
        exact = np.minimum(n_miss, EXACT_MISSES)
        draws = rng.choice(misses, size=(samples, EXACT_MISSES))
        columns = np.arange(EXACT_MISSES)[None, :]
        out = out + (draws * (columns < exact[:, None])).sum(axis=1)
        extra = n_miss - exact
        mean, sd = float(misses.mean()), float(misses.std())
        tail = extra * mean + np.sqrt(extra) * sd * rng.standard_normal(samples)
        out = out + np.maximum(tail, 0.0)
    return np.sort(out)


def _best_per_class(
    samples: Sequence[np.ndarray | None],
    speeds: Sequence[Sequence[float]],
    t: float,
) -> tuple[list[int], list[float]]:
    """Per class: the subspace with the largest ``F_s(t x speed)`` and that chance."""
    picks: list[int] = []
    chances: list[float] = []
    for row in speeds:
        best, chance = -1, -1.0
        for s, draws in enumerate(samples):
            if draws is None:
                continue
            f = np.searchsorted(draws, t * row[s], side="right") / draws.size
            if f > chance:
                best, chance = s, float(f)
        picks.append(best)
        chances.append(chance)
    return picks, chances


def plan_for_target(
    samples: Sequence[np.ndarray | None],
    speeds: Sequence[Sequence[float]],
    slots: Sequence[int],
    *,
    quantile: float = 0.5,
) -> list[int] | None:
    """Per class, the subspace its slots run so the cluster reaches the target soonest.

    ``samples[s]``: :func:`first_success_samples` of subspace s (``None``: it
    never reaches the target); ``speeds[c][s]``: true speed of s on class c;
    ``slots[c]``: slots of class c. The plan minimises the ``quantile`` of
    the cluster's first-success time (the median by default: the benchmark
    reports medians). ``None`` when no subspace reaches the target. Cost:
    O(60 x C x S x log samples).
    """
    if all(d is None for d in samples):
        return None

    def no_one_yet(t: float) -> float:  # log P(no slot succeeded by t)
        _, chances = _best_per_class(samples, speeds, t)
        pairs = zip(slots, chances, strict=True)
        return sum(n * math.log1p(-min(f, 1.0 - 1e-15)) for n, f in pairs)

    goal = math.log1p(-quantile)
    top = max(float(d[-1]) for d in samples if d is not None)
    fastest = min(min(v for v in row if v > 0) for row in speeds)
    lo, hi = 0.0, top / fastest
    for _ in range(60):
        mid = (lo + hi) / 2
        if no_one_yet(mid) <= goal:
            hi = mid
        else:
            lo = mid
    picks, chances = _best_per_class(samples, speeds, hi)
    for c, chance in enumerate(chances):
        if chance <= 0:  # this class cannot finish a hit by then: the best mean rate
            picks[c] = min(
                (s for s, d in enumerate(samples) if d is not None),
                key=lambda s: float(samples[s].mean()) / speeds[c][s],  # type: ignore[union-attr]
            )
    return picks


def regret_allocation(
    samples: Sequence[Sequence[np.ndarray | None]],
    widths: Sequence[float],
    speeds: Sequence[Sequence[float]],
    slots: Sequence[int],
    *,
    horizon_s: float,
    points: int = 48,
) -> list[list[int]]:
    """Slots per (class, subspace) that make the expected anytime regret smallest.

    The regret is the area under ``best loss so far - optimum`` over ``[0,
    horizon_s]``; ``E[best - optimum] = sum_k widths[k] x P(best > level_k)``
    over loss levels (``samples[k][s]``: :func:`first_success_samples` of s
    for level k, ``widths[k]`` the gap to the next lower level), and with
    independent slots ``P(best > level_k at t) = prod_slots (1 - F)``. Slots
    are added one at a time, each to the (class, subspace) that lowers the
    area most (greedy on a log-spaced time grid of ``points``); a class keeps
    its share. ``result[c][s]``: slots of class c to keep on s. Cost:
    O(slots x C x S x levels x points).
    """
    n_s = len(samples[0])
    fastest = max(max(row) for row in speeds)
    lowest = min(float(d[0]) for row in samples for d in row if d is not None) / fastest
    grid = np.geomspace(max(lowest, horizon_s * 1e-6), max(horizon_s, lowest * 2), points)
    dt = np.diff(np.concatenate([[0.0], grid]))
    w = np.asarray(widths, dtype=float)[:, None]
    # survive[c][s]: log P(one slot of c on s has no result <= level k by t), levels x points
    survive: list[list[np.ndarray]] = []
    for row in speeds:
        per_s = []
        for s in range(n_s):
            cols = []
            for level in samples:
                d = level[s]
                if d is None:
                    f = np.zeros(points)
                else:
                    f = np.searchsorted(d, grid * row[s], side="right") / d.size
                cols.append(np.log1p(-np.minimum(f, 1.0 - 1e-12)))
            per_s.append(np.vstack(cols))
        survive.append(per_s)
    logp = np.zeros((len(samples), points))
    counts = [[0] * n_s for _ in speeds]
    left = list(slots)
    while any(left):
        best: tuple[float, int, int] | None = None
        for c, options in enumerate(survive):
            if not left[c]:
                continue
            for s, add in enumerate(options):
                area = float((w * np.exp(logp + add) * dt).sum())
                if best is None or area < best[0]:
                    best = (area, c, s)
        assert best is not None
        _, c, s = best
        logp += survive[c][s]
        counts[c][s] += 1
        left[c] -= 1
    return counts
