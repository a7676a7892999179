"""The three schedulers: valid keys, fcfs uniform, shadho's fitted kernel, hwaware floors."""

from __future__ import annotations

import math
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
from hwaware_plugins.scheduling._gp_priority import design_matrix, length_scale_spread
from hwaware_plugins.scheduling._hwaware_model import (
    allocate,
    complexity_rates,
    promise,
    runtime_estimates,
)

SUBS = [SubspaceInfo("svm", 3.0, "svm"), SubspaceInfo("mlp", 9.0, "mlp"), SubspaceInfo("knn", 1.0)]
CLASSES = [DeviceClassInfo("gpu", speed=4.0, slots=4), DeviceClassInfo("cpu", speed=1.0, slots=12)]


@pytest.mark.parametrize("name", ["fcfs", "shadho", "hwaware"])
def test_registered_scheduler_returns_valid_keys(name: str) -> None:
    scheduler = load("scheduler", name, seed=1)
    assert isinstance(scheduler, Scheduler) and scheduler.name == name
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


@pytest.mark.parametrize("name", ["fcfs", "shadho", "hwaware"])
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


def test_runtime_estimates_worked_example() -> None:
    # subspace 0 ran 2 trials (8 s) on class 0 (speed 4); nothing on class 1 (speed 1)
    # class 1 prior: 4 s per trial x speed 4 / speed 1 = 16 s -> (0 + 2 x 16) / 2 = 16
    # class 0: (8 + 2 x prior) / 4, prior = reference 1 s... no other class data -> global 16/4
    table = runtime_estimates([[2, 0]], [[8.0, 0.0]], [4.0, 1.0], strength=2.0)
    assert table[0][1] == pytest.approx(16.0)
    assert table[0][0] == pytest.approx((8.0 + 2 * 4.0) / 4)


def test_promise_is_optimistic_and_shrinks() -> None:
    untried = promise(0, 0, base_rate=0.05)
    cold = promise(0, 50, base_rate=0.05)
    hot = promise(20, 50, base_rate=0.05)
    assert untried > cold and hot > cold
    assert promise(0, 500, base_rate=0.05) < cold


def test_allocate_respects_floor_and_comparative_advantage() -> None:
    # gpu 10x faster on mlp, same speed on svm; equal promise per reference second
    runtimes = [[1.0, 1.0], [1.0, 10.0]]  # [svm, mlp] x [gpu, cpu]
    values = [[1.0 / r for r in row] for row in runtimes]
    shares = allocate(values, runtimes, [4, 12], floor=0.1)
    gpu, cpu = shares
    assert sum(gpu) == pytest.approx(1) and sum(cpu) == pytest.approx(1)
    assert gpu[1] > 0.9 and cpu[0] > 0.8  # mlp on the gpu, svm on the cpu
    device_time = [4 * gpu[s] + 12 * cpu[s] for s in range(2)]
    assert min(device_time) / 16 >= 0.1 - 1e-9


def test_hwaware_never_starves_a_subspace() -> None:
    # mlp is terrible: slow and never good; it must still get its floor of device time
    scheduler = HwawareScheduler(seed=0, floor=0.05)
    scheduler.setup(SUBS, CLASSES)
    history = History()
    used: Counter[str] = Counter()
    runtime = {"svm": 1.0, "mlp": 20.0, "knn": 1.0}
    loss = {"svm": 0.1, "mlp": 0.9, "knn": 0.2}
    for i in range(4000):
        cls = "gpu" if i % 4 == 0 else "cpu"
        key = scheduler.choose(cls, history)
        used[key] += runtime[key]
        history.record(key, cls, runtime_s=runtime[key], loss=loss[key])
    shares = scheduler.shares()
    total_slots = sum(c.slots for c in CLASSES)
    for s in SUBS:
        planned = sum(shares[c.name][s.key] * c.slots for c in CLASSES) / total_slots
        assert planned >= 0.05 - 1e-9
    assert used["mlp"] / sum(used.values()) > 0.03
    assert used["svm"] > used["knn"]  # promise matters


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
    # no warm-up: the plan's draw may repeat a subspace before the other is tried
    picks = [off.choose("cpu", History()) for _ in range(50)]
    assert picks.count("b") > picks.count("a")


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


def test_hwaware_complexity_prior_fades_with_results() -> None:
    # identical results everywhere: early on the complex subspace gets the most time,
    # after many trials the prior has faded and shares even out
    def mlp_and_knn_time(n_each: int) -> tuple[float, float]:
        scheduler = HwawareScheduler(seed=0, floor=0.0)
        scheduler.setup(SUBS, CLASSES)
        history = History()
        for i in range(n_each):
            for s in SUBS:
                history.record(s.key, "cpu", runtime_s=1.0, loss=float(i % 7))
        scheduler.choose("cpu", history)
        shares = scheduler.shares()
        time = {s.key: sum(shares[c.name][s.key] * c.slots for c in CLASSES) for s in SUBS}
        return time["mlp"], time["knn"]

    early_mlp, early_knn = mlp_and_knn_time(0)
    late_mlp, late_knn = mlp_and_knn_time(300)
    assert early_mlp > 2 * early_knn
    assert late_mlp / late_knn < early_mlp / early_knn
    assert late_mlp / late_knn < 1.5


def test_complexity_rates_and_promise_prior_rate() -> None:
    rates = complexity_rates([3.0, 9.0, 0.0], base_rate=0.05)
    # 0 is floored at 1% of the mean (0.04): weights 3, 9, 0.04 over 12.04
    assert rates == pytest.approx([0.15 * 3 / 12.04, 0.15 * 9 / 12.04, 0.15 * 0.04 / 12.04])
    assert complexity_rates([0.0, 0.0], base_rate=0.1) == pytest.approx([0.1, 0.1])
    assert promise(0, 0, base_rate=0.05, prior_rate=0.2) > promise(0, 0, base_rate=0.05)
    assert promise(3, 10, base_rate=0.05, prior_rate=None) == promise(3, 10, base_rate=0.05)


def test_hwaware_rebuilds_often_early() -> None:
    # refresh_every=10, 3 subspaces: below 30 records the plan follows every 2 records
    scheduler = HwawareScheduler(seed=0, refresh_every=10, floor=0.0)
    scheduler.setup([SubspaceInfo("a"), SubspaceInfo("b")], [DeviceClassInfo("cpu", slots=4)])
    history = History()
    for key in ("a", "b"):
        history.record(key, "cpu", runtime_s=1.0, loss=1.0)
    scheduler.choose("cpu", history)
    before = scheduler.shares()["cpu"]["a"]
    for _ in range(2):
        history.record("a", "cpu", runtime_s=1.0, loss=0.0)
    scheduler.choose("cpu", history)
    assert scheduler.shares()["cpu"]["a"] > before
