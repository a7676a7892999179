"""The pure functions behind the ``hwaware`` scheduler.

- :func:`runtime_estimates`: runtime per (subspace, class), shrunk toward a
  prior built from the class speed and the subspace's runtimes elsewhere;
- :func:`promise`: an optimistic estimate of the chance that the next trial of
  a subspace lands among the best results seen so far;
- :func:`allocate`: device-time shares per class by comparative advantage,
  with a floor per subspace;
- :func:`complexity_weights`, :func:`complexity_rates` and
  :func:`declared_advantage`: what the declared complexity and per-family
  speeds say before any result exists (warm-up draws, the promise prior).

All take plain lists so they can be tested with worked examples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def runtime_estimates(
    counts: Sequence[Sequence[int]],
    sums: Sequence[Sequence[float]],
    speeds: Sequence[float],
    *,
    strength: float = 2.0,
) -> list[list[float]]:
    """Runtime of subspace s on class c, ``(sum_sc + k * prior_sc) / (n_sc + k)``.

    ``counts[s][c]``/``sums[s][c]``: trials and device seconds of the pair.
    The prior converts the subspace's runtimes on the *other* classes to class
    c through the declared speeds (runtime x speed is the reference-device
    time); a subspace seen nowhere else gets the reference-device mean of every
    subspace, and with no data at all ``1 / speed_c``. ``k = strength``.
    Cost: O(S x C^2).
    """
    n_s, n_c = len(counts), len(speeds)
    total_n = sum(sum(row) for row in counts)
    total_ref = sum(sums[s][c] * speeds[c] for s in range(n_s) for c in range(n_c))
    global_ref = total_ref / total_n if total_n else 1.0
    table: list[list[float]] = []
    for s in range(n_s):
        row: list[float] = []
        for c in range(n_c):
            other_n = sum(counts[s][o] for o in range(n_c) if o != c)
            other_ref = sum(sums[s][o] * speeds[o] for o in range(n_c) if o != c)
            reference = other_ref / other_n if other_n else global_ref
            prior = reference / speeds[c]
            row.append((sums[s][c] + strength * prior) / (counts[s][c] + strength))
        table.append(row)
    return table


def promise(
    hits: int,
    trials: int,
    *,
    base_rate: float,
    prior_trials: float = 2.0,
    optimism: float = 1.0,
    prior_rate: float | None = None,
) -> float:
    """Upper confidence bound on the chance that a trial of a subspace is a "hit".

    A hit is a result among the best ``base_rate`` fraction of everything seen.
    With ``p = prior_rate`` (``base_rate`` when ``None``), the posterior mean is
    ``m = (hits + p * prior_trials) / (trials + prior_trials)``
    plus ``optimism`` standard errors ``sqrt(m (1 - m) / (trials + prior_trials))``;
    an untried subspace is therefore optimistic and gets explored, and a tried
    one's bound shrinks like ``1 / sqrt(trials)``. Cost: O(1).
    """
    rate = base_rate if prior_rate is None else prior_rate
    m = (hits + rate * prior_trials) / (trials + prior_trials)
    return min(1.0, m + optimism * math.sqrt(m * (1.0 - m) / (trials + prior_trials)))


def allocate(
    values: Sequence[Sequence[float]],
    runtimes: Sequence[Sequence[float]],
    slots: Sequence[int],
    *,
    floor: float,
    sharpness: float = 2.0,
) -> list[list[float]]:
    """Device-time share of each subspace on each class; ``result[c][s]``, rows sum to 1.

    1. Floor: every subspace gets ``min(floor, 1/S)`` of the cluster's
       device time, taken first from the classes where its advantage (its
       speed there relative to its slot-weighted mean speed over all classes),
       divided by the class's largest advantage on any subspace, is highest:
       a class gives floors to what it is comparatively good at.
    2. The rest of each class's time goes to subspaces in proportion to
       ``(value_sc x advantage_sc) ** sharpness``, where ``value_sc`` is the
       promise per device second of class c.

    Cost: O(S x C log C).
    """
    n_s, n_c = len(values), len(slots)
    total = float(sum(slots))
    speed = [[1.0 / runtimes[s][c] for c in range(n_c)] for s in range(n_s)]
    advantage = []
    for s in range(n_s):
        mean = sum(slots[c] * speed[s][c] for c in range(n_c)) / total
        advantage.append([speed[s][c] / mean for c in range(n_c)])
    best_use = [max(advantage[s][c] for s in range(n_s)) for c in range(n_c)]
    capacity = [float(x) for x in slots]
    units = [[0.0] * n_s for _ in range(n_c)]
    need_each = min(floor, 1.0 / n_s) * total
    for s in range(n_s):
        need = need_each
        for c in sorted(range(n_c), key=lambda c: (-advantage[s][c] / best_use[c], c)):
            take = min(need, capacity[c])
            units[c][s] += take
            capacity[c] -= take
            need -= take
            if need <= 1e-12:
                break
    for c in range(n_c):
        if capacity[c] <= 0:
            continue
        scores = [max(values[s][c] * advantage[s][c], 0.0) ** sharpness for s in range(n_s)]
        norm = sum(scores)
        for s in range(n_s):
            share = scores[s] / norm if norm > 0 else 1.0 / n_s
            units[c][s] += capacity[c] * share
    return [[u / slots[c] for u in units[c]] for c in range(n_c)]


def decision_weights(shares: Sequence[float], runtimes: Sequence[float]) -> list[float]:
    """Per-decision probabilities that realise device-time ``shares`` on one class.

    A slot that picks s with probability pi_s spends ``pi_s r_s / sum pi r`` of
    its time on s, so ``pi_s ~ share_s / r_s``. Cost: O(S).
    """
    raw = [share / r for share, r in zip(shares, runtimes, strict=True)]
    norm = sum(raw)
    return [w / norm for w in raw] if norm > 0 else [1.0 / len(raw)] * len(raw)


def complexity_weights(complexities: Sequence[float]) -> list[float]:
    """Complexities normalised to sum to 1, each floored at 1% of the mean first.

    Complexity can be 0 (a constant-only subspace) or all equal; the floor keeps
    every weight positive, and all-zero complexities give equal weights. Cost: O(S).
    """
    mean = sum(max(c, 0.0) for c in complexities) / len(complexities)
    floored = [max(c, 0.01 * mean) for c in complexities] if mean > 0 else [1.0] * len(complexities)
    total = sum(floored)
    return [c / total for c in floored]


def complexity_rates(complexities: Sequence[float], base_rate: float) -> list[float]:
    """Prior hit rate per subspace: ``base_rate x S x normalised complexity``, capped at 0.5.

    The rates average ``base_rate`` (before the cap), so a subspace of average
    complexity keeps the plain prior and a more complex one starts more
    promising. Cost: O(S).
    """
    n = len(complexities)
    return [min(0.5, base_rate * n * w) for w in complexity_weights(complexities)]


def declared_advantage(
    families: Sequence[str | None],
    speeds: Sequence[float],
    speedups: Sequence[Mapping[str, float]],
    slots: Sequence[int],
) -> list[list[float]]:
    """``result[c][s]``: how much class c favours subspace s by the declared speeds alone.

    The declared speed of s on c is ``speedups[c][family_s]`` when given (and
    > 0), else ``speeds[c]``; the advantage is that speed over its
    slot-weighted mean over all classes. Without per-family speeds every
    subspace has the same advantage on a class, i.e. no preference. Used only
    to break ties before any runtime was measured. Cost: O(S x C).
    """
    total = float(sum(slots))
    table = [[0.0] * len(families) for _ in speeds]
    for s, family in enumerate(families):
        declared = []
        for c, speed in enumerate(speeds):
            given = speedups[c].get(family, 0.0) if family is not None else 0.0
            declared.append(given if given > 0 else speed)
        mean = sum(n * v for n, v in zip(slots, declared, strict=True)) / total
        for c, value in enumerate(declared):
            table[c][s] = value / mean
    return table
