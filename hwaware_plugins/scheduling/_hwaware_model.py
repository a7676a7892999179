"""The pure functions behind the ``hwaware`` scheduler.

- :func:`runtime_estimates`: runtime per (subspace, class), shrunk toward a
  prior built from the class speed and the subspace's runtimes elsewhere;
- :func:`hit_threshold_rank`: how many of the best results so far count as
  "hits" (the promise signal is the chance that a trial is one);
- :func:`hit_rate_prior`: the Beta prior of a subspace's hit rate;
- :func:`best_rate`: the subspace with the highest sampled hits per second on
  a class (Thompson sampling over hit rates, divided by learned runtimes);
- :func:`rank_scores`, :func:`tail_posterior` and :func:`best_tail_rate`: the
  same with a model of each subspace's whole loss distribution (normal on
  logit ranks), so the chance to beat a deep threshold is extrapolated from
  every result, not only the hits;
- :func:`complexity_weights` and :func:`declared_advantage`: what the declared
  complexity and per-family speeds say before any result exists (warm-up draws).

All take plain lists so they can be tested with worked examples.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def runtime_estimates(
    counts: Sequence[Sequence[int]],
    sums: Sequence[Sequence[float]],
    speeds: Sequence[float],
    *,
    strength: float = 2.0,
    exposures: Sequence[Sequence[float]] | None = None,
) -> list[list[float]]:
    """Runtime of subspace s on class c, ``(sum_sc + e_sc + k * prior_sc) / (n_sc + k)``.

    ``e_sc`` (``exposures``, default 0): seconds that trials of the pair still
    running have already run. Counting them is the maximum-likelihood mean of
    right-censored runtimes (exponential model): a pair whose trials are all
    still running after a long time is learned to be slow before any ends.

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
            extra = 0.0 if exposures is None else max(exposures[s][c], 0.0)
            row.append((sums[s][c] + extra + strength * prior) / (counts[s][c] + strength))
        table.append(row)
    return table


def complexity_weights(complexities: Sequence[float]) -> list[float]:
    """Complexities normalised to sum to 1, each floored at 1% of the mean first.

    Complexity can be 0 (a constant-only subspace) or all equal; the floor keeps
    every weight positive, and all-zero complexities give equal weights. Cost: O(S).
    """
    mean = sum(max(c, 0.0) for c in complexities) / len(complexities)
    floored = [max(c, 0.01 * mean) for c in complexities] if mean > 0 else [1.0] * len(complexities)
    total = sum(floored)
    return [c / total for c in floored]


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


def hit_threshold_rank(n_results: int, *, fraction: float, cap: int) -> int:
    """How many of the lowest losses so far are "hits": ``min(cap, ceil(fraction x n))``, >= 1.

    The same split TPE makes between good and bad trials (its defaults: 10%,
    at most 25): early on a tenth of the results, later a fixed number of the
    best, so the threshold keeps moving toward the best loss. Cost: O(1).
    """
    return max(1, min(cap, math.ceil(fraction * n_results)))


def hit_rate_prior(hits_total: int, n_results: int, *, strength: float) -> tuple[float, float]:
    """Beta prior ``(a, b)`` of a subspace's hit rate: the pooled rate, ``strength`` trials.

    With no results the pooled rate is taken as 0.5 (nothing known). An untried
    subspace's draw is then the pooled rate with the spread of ``strength``
    trials: wide, so it is tried (optimism by uncertainty). Cost: O(1).
    """
    rate = hits_total / n_results if n_results else 0.5
    rate = min(max(rate, 1e-3), 1 - 1e-3)
    return strength * rate, strength * (1.0 - rate)


def best_rate(
    rng: random.Random,
    hits: Sequence[int],
    trials: Sequence[int],
    runtimes: Sequence[float],
    prior: tuple[float, float],
) -> int:
    """Index of the subspace with the most sampled hits per second on one class.

    Per subspace s a hit rate ``p_s ~ Beta(a + hits_s, b + trials_s - hits_s)``
    is drawn (Thompson sampling: likely-good subspaces win most draws,
    uncertain ones win some) and divided by ``runtimes[s]``, the learned
    runtime of s on this class; the largest wins. Cost: O(S) Beta draws.
    """
    a, b = prior
    best, best_score = 0, -1.0
    for s, (h, n, r) in enumerate(zip(hits, trials, runtimes, strict=True)):
        score = rng.betavariate(a + h, b + max(n - h, 0)) / r
        if score > best_score:
            best, best_score = s, score
    return best


LogitStats = tuple[int, float, float]
"""Per subspace: (results, mean, sum of squared deviations) of its logit-rank scores."""


def rank_scores(losses: Sequence[Sequence[float]]) -> list[LogitStats]:
    """Per subspace, statistics of its losses' logit ranks among every result.

    Each loss gets its mid-rank r among all N results (ties share), ``u = r /
    (N + 1)`` and the score ``log(u / (1 - u))``: scale-free (any monotone
    transform of the loss gives the same scores) and with a logistic spread.
    ``losses[s]``: subspace s's losses, ascending. Cost: O(N log N).
    """
    arrays = [np.asarray(v, dtype=float) for v in losses]
    everything = np.sort(np.concatenate(arrays)) if arrays else np.empty(0)
    n = len(everything)
    out: list[LogitStats] = []
    for values in arrays:
        if values.size == 0:
            out.append((0, 0.0, 0.0))
            continue
        lo = np.searchsorted(everything, values, side="left")
        hi = np.searchsorted(everything, values, side="right")
        u = (lo + hi + 1) / 2.0 / (n + 1)
        z = np.log(u / (1.0 - u))
        mean = float(z.mean())
        out.append((int(values.size), mean, float(((z - mean) ** 2).sum())))
    return out


@dataclass(frozen=True)
class TailPosterior:
    """Normal-inverse-gamma posteriors of each subspace's logit-rank scores (arrays by subspace)."""

    kappa: np.ndarray
    mu: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray


def tail_posterior(stats: Sequence[LogitStats], *, prior_trials: float = 2.0) -> TailPosterior:
    """The conjugate posterior of a normal model of each subspace's logit-rank scores.

    Prior: mean 0 and variance pi^2/3 (the logistic spread of every score
    pooled), worth ``prior_trials`` results. Cost: O(S).
    """
    n = np.array([st[0] for st in stats], dtype=float)
    mean = np.array([st[1] for st in stats], dtype=float)
    ss = np.array([st[2] for st in stats], dtype=float)
    kappa0, alpha0 = prior_trials, 1.0 + prior_trials / 2.0
    beta0 = (alpha0 - 1.0) * math.pi**2 / 3.0
    kappa = kappa0 + n
    return TailPosterior(
        kappa=kappa,
        mu=n * mean / kappa,
        alpha=alpha0 + n / 2.0,
        beta=beta0 + ss / 2.0 + kappa0 * n * mean * mean / (2.0 * kappa),
    )


def best_tail_rate(
    rng: np.random.Generator,
    posterior: TailPosterior,
    runtimes: Sequence[float],
    threshold: float,
) -> int:
    """Index of the subspace with the most sampled chance per second to score below ``threshold``.

    Per subspace (Thompson sampling) a variance and a mean are drawn from
    :func:`tail_posterior`'s posterior, ``P(score < threshold)`` is taken
    under them and divided by ``runtimes[s]``; the largest wins. An untried
    subspace draws from the prior (optimistic by uncertainty); a subspace with
    good results but no result below the threshold yet still has a tail.
    Cost: O(S), vectorised.
    """
    variance = posterior.beta / rng.standard_gamma(posterior.alpha)
    draw = posterior.mu + np.sqrt(variance / posterior.kappa) * rng.standard_normal(len(variance))
    z = (threshold - draw) / np.sqrt(2.0 * variance)
    chance = [math.erfc(-v) for v in z.tolist()]
    scores = [c / r for c, r in zip(chance, runtimes, strict=True)]
    return max(range(len(scores)), key=scores.__getitem__)
