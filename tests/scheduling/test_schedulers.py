"""The schedulers: valid keys, random uniform, shadho's fitted kernel, hwaware's rules, oracle."""

from __future__ import annotations

import math
import random
import warnings
from collections import Counter

import numpy as np
import pytest

from hwaware_plugins import load
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.scheduling import (
    DeviceClassInfo,
    History,
    HwawareScheduler,
    Scheduler,
    ShadhoScheduler,
    SubspaceInfo,
)
from hwaware_plugins.scheduling._gp_priority import (
    design_matrix,
    fitted_length_scales,
    length_scale_spread,
    log_marginal_likelihoods,
)
from hwaware_plugins.scheduling._hwaware_model import (
    best_rate,
    best_tail_rate,
    hit_rate_prior,
    hit_threshold_rank,
    rank_scores,
    runtime_estimates,
    tail_posterior,
)

SUBS = [SubspaceInfo("svm", 3.0, "svm"), SubspaceInfo("mlp", 9.0, "mlp"), SubspaceInfo("knn", 1.0)]
CLASSES = [DeviceClassInfo("gpu", speed=4.0, slots=4), DeviceClassInfo("cpu", speed=1.0, slots=12)]


@pytest.mark.parametrize("name", ["random", "fcfs", "shadho", "hwaware"])
def test_registered_scheduler_returns_valid_keys(name: str) -> None:
    scheduler = load("scheduler", name, seed=1)
    assert isinstance(scheduler, Scheduler) and scheduler.name == name.replace("fcfs", "random")
    scheduler.setup(SUBS, CLASSES)
    history = History()
    rng = np.random.default_rng(0)
    for i in range(60):
        cls = CLASSES[i % 2].name
        key = scheduler.choose(cls, history)
        assert key in {s.key for s in SUBS}
        history.record(key, cls, runtime_s=1.0, loss=float(rng.random()), params={"x": i / 60})
    with pytest.raises(ConfigError, match="unknown device class 'tpu'"):
        scheduler.choose("tpu", history)


@pytest.mark.parametrize("name", ["random", "shadho", "hwaware", "oracle"])
def test_choose_before_setup_is_a_clear_error(name: str) -> None:
    with pytest.raises(ConfigError, match="call setup"):
        load("scheduler", name, seed=0).choose("cpu", History())


def test_fcfs_is_uniform() -> None:
    scheduler = load("scheduler", "fcfs", seed=7)
    scheduler.setup(SUBS, CLASSES)
    n = 6000
    counts = Counter(scheduler.choose("gpu", History()) for _ in range(n))
    expected = n / 3
    chi2 = sum((counts[s.key] - expected) ** 2 / expected for s in SUBS)
    assert chi2 < 13.8  # chi-square, 2 degrees of freedom, p = 0.001


def _smooth_data(rng: np.random.Generator, n: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.random((n, 2))
    return x, np.sin(x[:, 0] * scale) + 0.01 * rng.standard_normal(n)


def test_priority_reads_the_fitted_kernel() -> None:
    rng = np.random.default_rng(0)
    x, y = _smooth_data(rng, 40, 3.0)
    fitted = length_scale_spread(x, y, rng=np.random.default_rng(1), n_fits=10)
    unfitted = length_scale_spread(x, y, rng=np.random.default_rng(1), n_fits=10, fitted=False)
    # unfitted: the spread of the random initial scales drawn in [1e-2, 1e2]
    assert unfitted > 10 * fitted
    # fitted priority depends on the data
    x2, y2 = _smooth_data(rng, 40, 25.0)
    other = length_scale_spread(x2, y2, rng=np.random.default_rng(1), n_fits=10)
    assert not math.isclose(fitted, other, rel_tol=0.05)
    assert length_scale_spread(x[:2], y[:2], rng=rng) == 0.0


def test_design_matrix_scales_and_drops_constants() -> None:
    m = design_matrix([{"a": 1.0, "b": 5.0}, {"a": 3.0, "b": 5.0}, {"a": 2.0, "b": 5.0}])
    assert m.tolist() == [[0.0], [1.0], [0.5]]


def test_shadho_priority_changes_with_data() -> None:
    scheduler = ShadhoScheduler(seed=0, n_fits=10, refresh_every=10, rerank_every=10)
    scheduler.setup(SUBS, CLASSES)
    history = History()
    rng = np.random.default_rng(3)
    assert set(scheduler.priorities.values()) == {0.0}
    seen = []
    for i in range(60):
        x = float(rng.random())
        loss = math.sin(3 * x)  # noise-free: noisy data collapse the scale to its bound
        history.record("svm", "cpu", runtime_s=1.0, loss=loss, params={"C": x})
        scheduler.choose("cpu", history)
        if i % 10 == 0:
            seen.append(scheduler.priorities["svm"])
    assert max(seen) > 0
    assert len(set(seen[1:])) > 1  # refitted on new data, new value
    assert scheduler.priorities["mlp"] == 0.0


def test_shadho_fast_class_draws_the_top_ranked_subspace_most() -> None:
    scheduler = ShadhoScheduler(seed=0)
    scheduler.setup(SUBS, CLASSES)
    # no data, priorities all 0 (positions by index): svm 2x1=2, mlp 1x2=2, knn 3x3=9
    # -> svm, mlp, knn; banding(3, 2) gives the gpu all three; Planck 1 : e^-0.5 : e^-1
    counts = Counter(scheduler.choose("gpu", History()) for _ in range(4000))
    assert counts["svm"] > counts["mlp"] > counts["knn"] > 0
    assert counts["svm"] / 4000 == pytest.approx(1 / (1 + math.exp(-0.5) + math.exp(-1)), abs=0.03)


def test_fast_gp_fit_finds_the_likelihood_maximum() -> None:
    # smooth, nearly noise-free data: the likelihood has one clear maximum
    rng = np.random.default_rng(4)
    x = rng.random((6, 16, 2))
    y = np.sin(3 * x[..., 0]) + 0.01 * rng.standard_normal((6, 16))
    fast = fitted_length_scales(x, y, np.full(6, 0.5))
    dense = np.linspace(-3.0, 3.0, 601)
    best = dense[log_marginal_likelihoods(x, y, dense).argmax(axis=1)]
    assert np.abs(np.log10(fast) - best).max() < 0.1
    # pure noise: most fits run down to the lower bound of the length scale
    noise = fitted_length_scales(x, rng.standard_normal((6, 16)), np.full(6, 0.5))
    assert np.all(noise < 0.1) and np.median(noise) == pytest.approx(1e-5)
    # the batched likelihood is scikit-learn's
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF

    gp = GaussianProcessRegressor(kernel=RBF(0.3), alpha=1e-6, normalize_y=True, optimizer=None)
    gp.fit(x[0], y[0])
    ours = log_marginal_likelihoods(x[:1], y[:1], np.log10(np.array([0.3])))[0, 0]
    assert ours == pytest.approx(gp.log_marginal_likelihood_value_, rel=1e-6)


def test_gp_likelihood_is_scale_free_and_finite_for_huge_losses() -> None:
    # Losses near 1e300 overflowed the normalisation (numpy warnings, nan priorities).
    rng = np.random.default_rng(5)
    x = rng.random((2, 10, 2))
    y = rng.random((2, 10))
    grid = np.log10(np.array([0.1, 1.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        huge = log_marginal_likelihoods(x, y * 1e300, grid)
    assert np.allclose(huge, log_marginal_likelihoods(x, y, grid))


def test_runtime_estimates_worked_example() -> None:
    # subspace 0 ran 2 trials (8 s) on class 0 (speed 4); nothing on class 1 (speed 1)
    # class 1 prior: 4 s per trial x speed 4 / speed 1 = 16 s -> (0 + 2 x 16) / 2 = 16
    table = runtime_estimates([[2, 0]], [[8.0, 0.0]], [4.0, 1.0], strength=2.0)
    assert table[0][1] == pytest.approx(16.0)
    # class 0 itself: (8 + 2 x prior) / 4, prior from the global mean (4 s x 4 = 16 / 4 = 4)
    assert table[0][0] == pytest.approx((8.0 + 2 * 4.0) / 4)
    # trials still running on class 1 for 30 s in all: (0 + 30 + 2 x 16) / 2 = 31
    censored = runtime_estimates(
        [[2, 0]], [[8.0, 0.0]], [4.0, 1.0], strength=2.0, exposures=[[0.0, 30.0]]
    )
    assert censored[0][1] == pytest.approx(31.0)


def test_hit_threshold_and_prior() -> None:
    assert hit_threshold_rank(0, fraction=0.1, cap=25) == 1
    assert hit_threshold_rank(95, fraction=0.1, cap=25) == 10
    assert hit_threshold_rank(10_000, fraction=0.1, cap=25) == 25
    assert hit_rate_prior(0, 0, strength=2.0) == pytest.approx((1.0, 1.0))
    assert hit_rate_prior(10, 100, strength=2.0) == pytest.approx((0.2, 1.8))


def test_best_rate_trades_hit_rate_against_runtime() -> None:
    rng = random.Random(0)
    # same hit rate, b twice as fast: b wins most draws; a 10x hit rate beats a 2x speed
    wins = Counter(best_rate(rng, [10, 10], [100, 100], [2.0, 1.0], (1.0, 9.0)) for _ in range(500))
    assert wins[1] > 0.9 * 500
    wins = Counter(best_rate(rng, [50, 5], [100, 100], [2.0, 1.0], (1.0, 9.0)) for _ in range(500))
    assert wins[0] > 0.9 * 500
    # an untried subspace (prior only) still wins some draws against a known mediocre one
    wins = Counter(best_rate(rng, [5, 0], [100, 0], [1.0, 1.0], (0.2, 1.8)) for _ in range(500))
    assert 0 < wins[1] < 500


def test_rank_scores_worked_example() -> None:
    # all results 0.1 < 0.2 < 0.3: ranks 1, 2, 3 of N = 3 -> u = r / 4 -> logit
    stats = rank_scores([[0.1, 0.3], [0.2], []])
    n, mean, ss = stats[0]
    assert (n, mean) == (2, pytest.approx(0.0)) and ss == pytest.approx(2 * math.log(3) ** 2)
    assert stats[1] == (1, pytest.approx(0.0), pytest.approx(0.0))
    assert stats[2] == (0, 0.0, 0.0)
    # ties share their mid-rank; any monotone transform of the losses gives the same scores
    assert rank_scores([[0.1], [0.1]])[0][1] == pytest.approx(0.0)
    flat = [v for row in rank_scores([[1.0, 9.0], [4.0]]) for v in row]
    assert flat == pytest.approx([v for row in stats[:2] for v in row])


def test_best_tail_rate_trades_tail_chance_against_runtime() -> None:
    rng = np.random.default_rng(0)
    good, plain = (200, -2.0, 200 * 1.0), (200, 0.0, 200 * 1.0)
    threshold = -4.0  # a deep target: the good subspace's tail is far likelier to reach it
    wins = Counter(
        best_tail_rate(rng, tail_posterior([good, plain]), [2.0, 1.0], threshold)
        for _ in range(300)
    )
    assert wins[0] > 0.95 * 300
    # the same two at equal runtime but a shallow threshold: both plausible, good still leads
    wins = Counter(
        best_tail_rate(rng, tail_posterior([good, plain]), [1.0, 1.0], 0.0) for _ in range(300)
    )
    assert wins[0] > wins[1]
    # an untried subspace draws from the prior: it wins some draws against a known plain one
    wins = Counter(
        best_tail_rate(rng, tail_posterior([plain, (0, 0.0, 0.0)]), [1.0, 1.0], threshold)
        for _ in range(300)
    )
    assert 0 < wins[1] < 300


def _feed(
    scheduler: HwawareScheduler,
    n: int,
    runtime: dict[tuple[str, str], float],
    loss: dict[str, float],
    classes: list[DeviceClassInfo],
    seed: int = 0,
) -> tuple[History, Counter[tuple[str, str]]]:
    """Replay ``n`` decisions on a virtual clock; losses jitter around ``loss``."""
    rng = np.random.default_rng(seed)
    history = History()
    used: Counter[tuple[str, str]] = Counter()
    clock = 0.0
    for i in range(n):
        cls = classes[i % len(classes)].name
        key = scheduler.choose(cls, history)
        used[(key, cls)] += 1
        clock += 0.1
        value = loss[key] * float(rng.lognormal(0, 0.3))
        history.record(key, cls, runtime_s=runtime[(key, cls)], loss=value, finished_at=clock)
    return history, used


def test_hwaware_never_starves_a_subspace() -> None:
    # mlp is terrible: slow and never good; the floor still gives it decisions
    scheduler = HwawareScheduler(seed=0, floor=0.05)
    scheduler.setup(SUBS, CLASSES)
    runtime = {
        (k, c.name): r for k, r in (("svm", 1.0), ("mlp", 20.0), ("knn", 1.0)) for c in CLASSES
    }
    _, used = _feed(scheduler, 4000, runtime, {"svm": 0.1, "mlp": 0.9, "knn": 0.2}, CLASSES)
    mlp = used[("mlp", "gpu")] + used[("mlp", "cpu")]
    assert mlp / 4000 > 0.05 / 3 * 0.7
    svm = used[("svm", "gpu")] + used[("svm", "cpu")]
    assert svm > 0.8 * 4000  # promise matters: the good subspace gets nearly all the rest


@pytest.mark.parametrize("state", ["fail", "pruned", "timeout"])
def test_hwaware_stops_feeding_a_subspace_whose_trials_never_complete(state: str) -> None:
    # "mlp" fails at once every time: cheap per trial, yet it must not draw the slots
    scheduler = HwawareScheduler(seed=3)
    scheduler.setup(SUBS, CLASSES[1:])
    history = History()
    rng = np.random.default_rng(3)
    clock = 0.0
    chosen: Counter[str] = Counter()
    for _ in range(300):
        key = scheduler.choose("cpu", history)
        chosen[key] += 1
        clock += 0.1
        if key == "mlp":
            history.record(key, "cpu", runtime_s=0.01, state=state, finished_at=clock)
        else:
            history.record(key, "cpu", runtime_s=1.0, loss=float(rng.random()),
                           finished_at=clock)
    assert chosen["mlp"] < 0.1 * 300, chosen


def test_an_out_of_memory_trial_does_not_count_against_its_subspace() -> None:
    scheduler = HwawareScheduler(seed=0)
    scheduler.setup(SUBS, CLASSES)
    history = History()
    for key, loss in (("svm", 0.5), ("mlp", 0.1), ("knn", 0.9)):
        history.record(key, "cpu", runtime_s=1.0, loss=loss, finished_at=1.0)
    scheduler.choose("cpu", history)
    before = scheduler._posterior
    history.record("mlp", "gpu", runtime_s=1.0, state="oom", finished_at=2.0)
    scheduler.choose("cpu", history)
    after = scheduler._posterior
    assert before is not None and after is not None
    assert np.array_equal(before.mu, after.mu)


@pytest.mark.parametrize("promise", ["model", "counts"])
def test_hwaware_places_by_comparative_advantage(promise: str) -> None:
    # net and svm are equally good; the gpu runs net 10x faster, svm no faster.
    # Speedups are not declared: the scheduler must learn them from runtimes.
    subs = [SubspaceInfo("net", 1.0, "mlp"), SubspaceInfo("svm", 1.0, "svm")]
    classes = [
        DeviceClassInfo("gpu", speed=4.0, slots=8),
        DeviceClassInfo("cpu", speed=1.0, slots=8),
    ]
    runtime = {("net", "gpu"): 1.0, ("net", "cpu"): 10.0, ("svm", "gpu"): 2.0, ("svm", "cpu"): 2.0}
    scheduler = HwawareScheduler(seed=1, promise=promise)
    scheduler.setup(subs, classes)
    _, used = _feed(scheduler, 3000, runtime, {"net": 0.1, "svm": 0.1}, classes)
    assert used[("net", "gpu")] > 2 * used[("svm", "gpu")]
    assert used[("svm", "cpu")] > 2 * used[("net", "cpu")]


def test_hwaware_learns_a_slow_pair_before_its_trials_end() -> None:
    # every cpu slot took "net" at time 0; other results keep arriving, net on cpu never
    # ends: the time its trials have already run makes it look slow
    subs = [SubspaceInfo("net", 1.0, "mlp"), SubspaceInfo("svm", 1.0, "svm")]
    classes = [
        DeviceClassInfo("gpu", speed=4.0, slots=8),
        DeviceClassInfo("cpu", speed=1.0, slots=8),
    ]
    scheduler = HwawareScheduler(seed=0, min_trials=0, floor=0.0)
    scheduler.setup(subs, classes)
    history = History()
    history.record("net", "gpu", runtime_s=0.5, loss=0.1, finished_at=0.5)
    history.record("svm", "gpu", runtime_s=0.5, loss=0.1, finished_at=0.5)
    history.record("svm", "cpu", runtime_s=0.5, loss=0.1, finished_at=0.5)
    scheduler.choose("cpu", history)
    while scheduler._launched[1][0] < 8:
        scheduler.choose("cpu", history)
    before = scheduler.expected_rates("cpu")["net"]
    for t in range(1, 60):
        history.record("svm", "gpu", runtime_s=0.5, loss=0.1, finished_at=0.5 + t)
    scheduler.choose("gpu", history)
    assert scheduler.expected_rates("cpu")["net"] < before / 5


def test_oracle_takes_the_most_expected_improvement_per_true_second() -> None:
    subs = [SubspaceInfo("net", 1.0, "mlp"), SubspaceInfo("svm", 1.0, "svm")]
    classes = [
        DeviceClassInfo("gpu", speed=4.0, slots=2, speedup={"mlp": 20.0, "svm": 1.0}),
        DeviceClassInfo("cpu", speed=1.0, slots=6),
    ]
    oracle = load("scheduler", "oracle", seed=0)
    oracle.setup(subs, classes)
    with pytest.raises(ConfigError, match="reveal"):
        oracle.choose("gpu", History())
    with pytest.raises(ConfigError, match="'svm'"):
        oracle.reveal({"net": [0.1]}, {"net": 1.0})
    # net: losses 0.1 / 0.5, 4 s; svm: losses 0.2 / 0.3, 1 s
    oracle.reveal({"net": [0.1, 0.5], "svm": [0.2, 0.3]}, {"net": 4.0, "svm": 1.0})
    history = History()
    history.record("svm", "cpu", runtime_s=1.0, loss=0.25)
    # incumbent 0.25: EI net = (0.15 + 0) / 2 = 0.075, svm = 0.05 / 2 = 0.025
    # per second on gpu: net 0.075 x 20 / 4 = 0.375 vs svm 0.025; on cpu 0.019 vs 0.025
    assert oracle.choose("gpu", history) == "net"
    assert oracle.choose("cpu", history) == "svm"


def test_hwaware_one_subspace_and_one_class() -> None:
    one = HwawareScheduler(seed=0)
    one.setup([SubspaceInfo("only")], CLASSES)
    assert {one.choose("cpu", History()) for _ in range(20)} == {"only"}
    single = HwawareScheduler(seed=0)
    single.setup(SUBS, [DeviceClassInfo("cpu", slots=3)])
    history = History()
    for _ in range(300):
        key = single.choose("cpu", history)
        history.record(key, "cpu", runtime_s=1.0, loss=0.1 if key == "knn" else 0.5)
    counts = Counter(single.choose("cpu", history) for _ in range(1000))
    assert counts.most_common(1)[0][0] == "knn" and len(counts) == 3


def test_setup_rejects_bad_input() -> None:
    scheduler = HwawareScheduler(seed=0)
    with pytest.raises(ConfigError, match="at least one subspace"):
        scheduler.setup([], CLASSES)
    with pytest.raises(ConfigError, match="speeds must be > 0"):
        scheduler.setup(SUBS, [DeviceClassInfo("x", speed=0.0)])
    with pytest.raises(ConfigError, match="floor"):
        HwawareScheduler(seed=0, floor=2.0).setup(SUBS, CLASSES)
    with pytest.raises(ConfigError, match="promise must be 'model' or 'counts'"):
        HwawareScheduler(seed=0, promise="ucb").setup(SUBS, CLASSES)


def test_hwaware_warm_up_spreads_free_slots_at_time_zero() -> None:
    # 150 free slots ask at once with nothing recorded: each subspace is served first
    for min_trials in (1, 2):
        scheduler = HwawareScheduler(seed=3, min_trials=min_trials)
        scheduler.setup(SUBS, CLASSES)
        first = [scheduler.choose("cpu", History()) for _ in range(3 * min_trials)]
        assert Counter(first) == {s.key: min_trials for s in SUBS}


def test_hwaware_warm_up_counts_recorded_results_and_can_be_disabled() -> None:
    history = History()
    history.record("svm", "cpu", runtime_s=1.0, state="fail")
    history.record("mlp", "cpu", runtime_s=1.0, loss=0.3)
    scheduler = HwawareScheduler(seed=0)
    scheduler.setup(SUBS, CLASSES)
    assert scheduler.choose("cpu", history) == "knn"  # the only untried one
    with pytest.raises(ConfigError, match="min_trials must be an integer >= 0"):
        HwawareScheduler(seed=0, min_trials=-1).setup(SUBS, CLASSES)
    off = HwawareScheduler(seed=0, min_trials=0)
    off.setup([SubspaceInfo("a", 1.0), SubspaceInfo("b", 1000.0)], CLASSES)
    # no warm-up: the draws may repeat a subspace before the other is tried
    picks = [off.choose("cpu", History()) for _ in range(6)]
    assert len(set(picks)) < len(picks)


def test_hwaware_warm_up_order_follows_complexity_and_declared_speed() -> None:
    firsts: Counter[str] = Counter()
    for seed in range(400):
        scheduler = HwawareScheduler(seed=seed)
        scheduler.setup(SUBS, CLASSES)  # complexities 3, 9, 1
        firsts[scheduler.choose("cpu", History())] += 1
    assert firsts["mlp"] > firsts["svm"] > firsts["knn"]
    assert firsts["mlp"] / 400 == pytest.approx(9 / 13, abs=0.08)
    # equal complexity, but the gpu is declared 20x faster on the mlp family only
    subs = [SubspaceInfo("svm", 1.0, "svm"), SubspaceInfo("mlp", 1.0, "mlp")]
    classes = [
        DeviceClassInfo("gpu", speed=1.0, slots=4, speedup={"mlp": 20.0}),
        DeviceClassInfo("cpu", speed=1.0, slots=12),
    ]
    on_gpu: Counter[str] = Counter()
    for seed in range(200):
        scheduler = HwawareScheduler(seed=seed)
        scheduler.setup(subs, classes)
        on_gpu[scheduler.choose("gpu", History())] += 1
    assert on_gpu["mlp"] > 0.75 * 200


def test_hwaware_first_wave_follows_complexity_until_a_result_exists() -> None:
    subs = [SubspaceInfo("big", 9.0), SubspaceInfo("small", 1.0)]
    classes = [DeviceClassInfo("cpu", speed=1.0, slots=200)]
    shares = {}
    for mode in ("complexity", "uniform"):
        scheduler = HwawareScheduler(seed=0, first_wave=mode)
        scheduler.setup(subs, classes)
        picks = [scheduler.choose("cpu", History()) for _ in range(200)]
        shares[mode] = picks.count("big") / len(picks)
    assert shares["complexity"] > 0.8
    assert 0.35 < shares["uniform"] < 0.65
    with pytest.raises(ConfigError, match="first_wave"):
        HwawareScheduler(first_wave="shadho").setup(subs, classes)
