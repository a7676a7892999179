"""What Optuna's ``TPESampler`` (defaults) does for one categorical parameter, in closed form.

For a single categorical of K choices, Optuna 5's TPE (``n_startup_trials=10``,
``n_ei_candidates=24``, ``gamma(n) = min(ceil(0.1 n), 25)``, the default
ramped ``weights``, ``prior_weight=1``) does, per ask:

1. with fewer than 10 complete (or pruned) trials: a uniform draw;
2. otherwise it splits the complete trials into the ``gamma(n)`` lowest losses
   ("below"; ties: the earlier trial first) and the rest ("above"), each kept
   in trial order;
3. it builds a Parzen estimator on each: one kernel per observation, weighted
   by ``weights(len)`` (ramped from ``1/len`` for the oldest observations when
   there are more than 25, then flat), plus a prior kernel of weight 1; an
   observation's kernel puts ``(a + [c = observed]) / (1 + K a)`` on choice c,
   with ``a = 1 / (observations + 1)``, the prior kernel ``1 / K``;
4. it draws 24 candidates from the below estimator and returns the one with
   the largest ``log l(c) - log g(c)`` (the first drawn among equal values).

Every kernel of a categorical is a mixture over the same K choices, so each
estimator collapses to K probabilities built from per-choice sums of weights,
and step 4 has an exact distribution: see :func:`choice_probabilities`. The
functions here compute exactly that; ``tests/adapters/optuna/test_tpe_fidelity.py``
checks them against Optuna itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

N_STARTUP_TRIALS = 10
"""Optuna's default ``n_startup_trials``: uniform draws before this many results."""
N_EI_CANDIDATES = 24
"""Optuna's default ``n_ei_candidates``: candidates drawn from l(x) per ask."""
PRIOR_WEIGHT = 1.0
"""Optuna's default ``prior_weight``."""
FLAT_WEIGHTS = 25
"""The newest observations that keep weight 1 in Optuna's ``default_weights``."""


def gamma(n: int) -> int:
    """How many of ``n`` results count as good: ``min(ceil(0.1 n), 25)`` (Optuna's default)."""
    return min(math.ceil(0.1 * n), 25)


def observation_weights(n: int) -> np.ndarray:
    """Weights of ``n`` observations in trial order (Optuna's ``default_weights``).

    Below 25: all 1. From 25: the oldest ``n - 25`` ramp linearly from ``1/n``
    to 1, the newest 25 weigh 1. Cost: O(n).
    """
    if n < FLAT_WEIGHTS:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, num=n - FLAT_WEIGHTS), np.ones(FLAT_WEIGHTS)])


def estimator_probabilities(
    per_choice_weight: Sequence[float] | np.ndarray, total_weight: float, n_observations: int
) -> np.ndarray:
    """The K choice probabilities of a categorical Parzen estimator.

    :param per_choice_weight: the summed (unnormalised) observation weights of
        each choice.
    :param total_weight: the sum of every observation weight (prior excluded).
    :param n_observations: how many observations (kernels other than the prior).

    ``p(c) = ((a W + W_c) / (1 + K a) + prior / K) / (W + prior)`` with
    ``a = prior / (n_observations + 1)``; no observation: uniform. Cost: O(K).
    """
    w = np.asarray(per_choice_weight, dtype=float)
    k = len(w)
    if n_observations == 0:
        return np.full(k, 1.0 / k)
    a = PRIOR_WEIGHT / (n_observations + 1)
    per_kernel = (a * total_weight + w) / (1.0 + k * a)
    probabilities: np.ndarray = (per_kernel + PRIOR_WEIGHT / k) / (total_weight + PRIOR_WEIGHT)
    return probabilities


def choice_probabilities(
    below: np.ndarray, above: np.ndarray, n_candidates: int = N_EI_CANDIDATES
) -> np.ndarray:
    """Probability that TPE returns each choice, given l(c) = ``below`` and g(c) = ``above``.

    ``n_candidates`` independent draws from ``below``; the returned choice is
    the drawn one with the largest ``log below - log above``, the first drawn
    among equal values. With the choices grouped by that score, best first,
    and ``R_j`` the ``below`` mass of groups j and worse, group j wins with
    probability ``R_j^N - R_(j+1)^N`` (some candidate in it, none better), and a
    choice of the group with its share of the group's mass (the first of the
    group's candidates decides). Cost: O(K log K).
    """
    score = np.log(below) - np.log(above)
    order = sorted(range(len(score)), key=lambda c: -score[c])
    groups: list[list[int]] = []
    for c in order:
        if groups and score[groups[-1][0]] == score[c]:
            groups[-1].append(c)
        else:
            groups.append([c])
    masses = [float(sum(below[c] for c in g)) for g in groups]
    tails = [0.0] * (len(groups) + 1)
    for j in range(len(groups) - 1, -1, -1):
        tails[j] = tails[j + 1] + masses[j]
    out = np.zeros(len(score))
    for j, group in enumerate(groups):
        wins = tails[j] ** n_candidates - tails[j + 1] ** n_candidates
        for c in group:
            out[c] = wins * below[c] / masses[j]
    total = out.sum()
    result: np.ndarray = out / total
    return result


def tpe_densities(
    choices: np.ndarray, below_positions: Sequence[int], n_choices: int
) -> tuple[np.ndarray, np.ndarray]:
    """TPE's two estimators, l(c) (good results) and g(c) (the rest), as K probabilities.

    :param choices: the choice index of each complete result, in trial order.
    :param below_positions: positions (into ``choices``) of the ``gamma(n)``
        best results (lowest loss, ties: earliest), any order.
    :param n_choices: K.

    Cost: O(n) numpy work (the above estimator's ramped weights) plus O(K).
    """
    below_sorted = sorted(below_positions)
    below_choices = choices[np.asarray(below_sorted, dtype=np.intp)]
    weights_below = observation_weights(len(below_choices))
    below_sums = np.bincount(below_choices, weights=weights_below, minlength=n_choices)
    l_probs = estimator_probabilities(below_sums, float(weights_below.sum()), len(below_choices))
    above_choices = np.delete(choices, np.asarray(below_sorted, dtype=np.intp))
    weights = observation_weights(len(above_choices))
    above_sums = np.bincount(above_choices, weights=weights, minlength=n_choices)
    g_probs = estimator_probabilities(above_sums, float(weights.sum()), len(above_choices))
    return l_probs, g_probs


def tpe_probabilities(
    choices: np.ndarray, below_positions: Sequence[int], n_choices: int
) -> np.ndarray:
    """The distribution of TPE's next choice given the complete results so far.

    Arguments as :func:`tpe_densities`. Before :data:`N_STARTUP_TRIALS`
    results: uniform; then :func:`choice_probabilities` of the two
    estimators. Cost: that of :func:`tpe_densities` plus O(K log K).
    """
    if len(choices) < N_STARTUP_TRIALS:
        return np.full(n_choices, 1.0 / n_choices)
    below, above = tpe_densities(choices, below_positions, n_choices)
    return choice_probabilities(below, above)
