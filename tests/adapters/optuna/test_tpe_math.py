"""The closed-form ``tpe`` scheduler against Optuna's ``TPESampler`` itself.

Fidelity on seeded histories: fewer results than ``n_startup_trials``, fewer
and more than 25 (where Optuna's weights start to ramp), ties in the losses
and failed trials in between. Checked three ways: Optuna's defaults equal
ours, the log-densities l(c) and g(c) equal those of Optuna's own Parzen
estimators, and the probability of each subspace being chosen equals the
frequency with which Optuna's sampler, asked again and again on the same
history, picks it.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import optuna
import pytest
from hwaware_optuna._tpe_math import (
    N_EI_CANDIDATES,
    choice_probabilities,
    gamma,
    observation_weights,
    tpe_densities,
)
from hwaware_optuna._tpe_scheduler import PARAM, TpeScheduler
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import TPESampler
from optuna.samplers._tpe.sampler import _split_trials, default_gamma, default_weights
from optuna.study import StudyDirection
from optuna.trial import TrialState, create_trial

from hwaware_plugins.scheduling import DeviceClassInfo, History, SubspaceInfo

KEYS = [f"s{i}" for i in range(6)]
SUBS = [SubspaceInfo(k) for k in KEYS]
CLASSES = [DeviceClassInfo("cpu", slots=4)]
MEANS = [0.30, 0.10, 0.50, 0.12, 0.70, 0.40]

Result = tuple[int, float | None]  # (subspace index, loss; None: a failed trial)


def _history_results(n: int, seed: int, *, decimals: int | None = None) -> list[Result]:
    """``n`` trials of skewed subspace choices; every 7th fails; losses rounded for ties."""
    rng = np.random.default_rng(seed)
    out: list[Result] = []
    for i in range(n):
        s = int(rng.choice(len(KEYS), p=[0.1, 0.3, 0.1, 0.3, 0.1, 0.1]))
        loss = MEANS[s] + float(rng.normal(0.0, 0.1))
        if decimals is not None:
            loss = round(loss, decimals)
        out.append((s, None if i % 7 == 6 else loss))
    return out


CASES = {
    "startup": _history_results(11, 0),  # 9 complete < n_startup_trials
    "few": _history_results(16, 1, decimals=1),  # 14 complete, tied losses
    "ramp": _history_results(70, 2, decimals=1),  # 60 complete: the above weights ramp
    "many": _history_results(350, 3),  # 300 complete: 25 below
}


def _history(results: list[Result]) -> History:
    history = History()
    for s, loss in results:
        if loss is None:
            history.record(KEYS[s], "cpu", runtime_s=1.0, state="fail")
        else:
            history.record(KEYS[s], "cpu", runtime_s=1.0, loss=loss)
    return history


def _study(results: list[Result], seed: int) -> tuple[optuna.Study, TPESampler]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distribution = CategoricalDistribution(KEYS)
    sampler = TPESampler(seed=seed, constant_liar=False)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.add_trials(
        [
            create_trial(
                params={PARAM: KEYS[s]},
                distributions={PARAM: distribution},
                value=loss,
                state=TrialState.FAIL if loss is None else TrialState.COMPLETE,
            )
            for s, loss in results
        ]
    )
    return study, sampler


def test_gamma_and_weights_are_optunas_defaults() -> None:
    for n in range(0, 400):
        assert gamma(n) == default_gamma(n)
        np.testing.assert_array_equal(observation_weights(n), default_weights(n))


@pytest.mark.parametrize("case", ["few", "ramp", "many"])
def test_log_densities_equal_optunas_parzen_estimators(case: str) -> None:
    results = CASES[case]
    study, sampler = _study(results, seed=0)
    distribution = CategoricalDistribution(KEYS)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    below, above = _split_trials(study, trials, default_gamma(len(trials)))
    space: dict[str, BaseDistribution] = {PARAM: distribution}
    every = {PARAM: np.arange(len(KEYS), dtype=float)}
    optuna_l = sampler._build_parzen_estimator(study, space, below, handle_below=True).log_pdf(
        every
    )
    optuna_g = sampler._build_parzen_estimator(study, space, above, handle_below=False).log_pdf(
        every
    )
    complete = [(s, loss) for s, loss in results if loss is not None]
    choices = np.array([s for s, _ in complete], dtype=np.intp)
    best = sorted(range(len(complete)), key=lambda i: (complete[i][1], i))[: gamma(len(complete))]
    ours_l, ours_g = tpe_densities(choices, best, len(KEYS))
    np.testing.assert_allclose(np.log(ours_l), optuna_l, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.log(ours_g), optuna_g, rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", list(CASES))
def test_choice_probabilities_equal_optunas_frequencies(case: str) -> None:
    results = CASES[case]
    scheduler = TpeScheduler(seed=0)
    scheduler.setup(SUBS, CLASSES)
    ours = scheduler.probabilities(_history(results))
    study, sampler = _study(results, seed=7)
    stub = create_trial(state=TrialState.RUNNING)
    distribution = CategoricalDistribution(KEYS)
    asks = 2000
    counts = Counter(
        sampler.sample_independent(study, stub, PARAM, distribution) for _ in range(asks)
    )
    for key in KEYS:
        p = ours[key]
        sigma = (p * (1 - p) / asks) ** 0.5
        assert abs(counts[key] / asks - p) <= 4.5 * sigma + 1e-3, (key, counts, ours)
    assert abs(sum(ours.values()) - 1.0) < 1e-12


def test_probabilities_and_cached_draws_agree() -> None:
    history = _history(CASES["ramp"])
    scheduler = TpeScheduler(seed=3)
    scheduler.setup(SUBS, CLASSES)
    ours = scheduler.probabilities(history)
    draws = 20_000
    counts = Counter(scheduler.choose("cpu", history) for _ in range(draws))
    for key in KEYS:
        sigma = (ours[key] * (1 - ours[key]) / draws) ** 0.5
        assert abs(counts[key] / draws - ours[key]) <= 4.5 * sigma + 1e-4


def test_tied_scores_share_the_win_by_mass_and_the_best_score_wins_most() -> None:
    below = np.array([0.25, 0.25, 0.5])
    above = np.array([0.5, 0.5, 0.25])  # choice 2 has the best score; 0 and 1 tie
    p = choice_probabilities(below, above, n_candidates=N_EI_CANDIDATES)
    assert p[2] == pytest.approx(1 - 0.5**N_EI_CANDIDATES)
    assert p[0] == pytest.approx(p[1])
    assert p.sum() == pytest.approx(1.0)


def test_incremental_split_matches_a_full_sort_as_results_arrive() -> None:
    results = _history_results(400, 4, decimals=2)
    scheduler = TpeScheduler(seed=0)
    scheduler.setup(SUBS, CLASSES)
    history = History()
    complete: list[tuple[float, int]] = []
    for s, loss in results:
        if loss is None:
            history.record(KEYS[s], "cpu", runtime_s=1.0, state="fail")
        else:
            history.record(KEYS[s], "cpu", runtime_s=1.0, loss=loss)
            complete.append((loss, len(complete)))
        scheduler.probabilities(history)
        expected = [i for _, i in sorted(complete)[: gamma(len(complete))]]
        assert scheduler._below() == expected


def test_the_exact_path_is_optunas_sampler() -> None:
    scheduler = TpeScheduler(seed=0, exact=True)
    scheduler.setup(SUBS, CLASSES)
    history = _history(CASES["few"])
    assert scheduler.choose("cpu", history) in KEYS
    assert scheduler._study is not None
    assert scheduler._study.direction == StudyDirection.MINIMIZE
    assert len(scheduler._study.trials) == len(CASES["few"])
