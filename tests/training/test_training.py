"""End to end on gloo CPU ranks: every policy learns digits, nothing hangs, state merges."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from hwaware_plugins.cli._bench_sgd import digits_split
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.training import PrunedError, fit, launch

from . import _ranks

pytestmark = pytest.mark.timeout(120)


def test_every_policy_trains_digits_above_90_percent_and_ranks_agree() -> None:
    results = launch(_ranks.train_every_policy, world_size=2, slowdowns=[1, 2], args=(2.0,))
    for policy in ("adaptive", "sync", "ds-sync", "adasync"):
        rank0, rank1 = results[0][policy], results[1][policy]
        assert rank0["accuracy"] > 0.9, (policy, rank0["accuracy"])
        assert rank0["checksum"] == pytest.approx(rank1["checksum"], rel=1e-6), policy
        assert rank0["time_s"] == pytest.approx(rank1["time_s"]), policy
    # Dynamic dispatch gave the fast rank more steps; lock-step policies did equal steps.
    assert results[0]["adaptive"]["steps"] > results[1]["adaptive"]["steps"]
    assert results[0]["sync"]["steps"] == results[1]["sync"]["steps"]
    # On the virtual clock sync waits for the slow rank every step; adaptive does not.
    assert results[0]["adaptive"]["time_s"] < results[0]["sync"]["time_s"]


@pytest.mark.timeout(90)
def test_uneven_steps_per_rank_never_hang_on_the_real_clock() -> None:
    """Real time: the store-backed cursor hands the fast rank more batches; merges still meet."""
    results = launch(
        _ranks.train_digits, world_size=2, slowdowns=[1, 4], clock="real",
        args=("adaptive", 0.25), timeout_s=60,
    )
    steps = [r["steps"] for r in results]
    assert steps[0] > steps[1] >= 1, steps
    assert results[0]["checksum"] == pytest.approx(results[1]["checksum"], rel=1e-6)


def test_virtual_clock_runs_are_deterministic() -> None:
    first = launch(_ranks.train_digits, world_size=2, slowdowns=[1, 3], args=("adaptive", 0.3))
    again = launch(_ranks.train_digits, world_size=2, slowdowns=[1, 3], args=("adaptive", 0.3))
    assert [h.batch_size for h in first[0]["history"]] == [
        h.batch_size for h in again[0]["history"]
    ]
    assert first[0]["checksum"] == again[0]["checksum"]
    assert first[0]["time_s"] == again[0]["time_s"]


def test_optimizer_state_is_averaged_with_the_model_weights_or_reset() -> None:
    averaged = launch(_ranks.merge_state, world_size=2, args=("average",))
    for rank in averaged:
        assert rank["weight"] == pytest.approx([0.25 * 0.9 + 0.75 * 1.8] * 2)
        assert rank["momentum"] == pytest.approx([0.25 * 1 + 0.75 * 2] * 2)
    reset = launch(_ranks.merge_state, world_size=2, args=("reset",))
    assert [r["momentum"] for r in reset] == [None, None]


class FakeTrial:
    """Prunes once it has seen ``after`` reports."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.reports: list[tuple[int, float]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return len(self.reports) >= self.after


def test_a_trial_sees_every_round_and_its_pruner_stops_all_ranks() -> None:
    train, val = digits_split(0)
    model = torch.nn.Linear(64, 10)
    with pytest.raises(PrunedError, match="pruned at round 1"):
        fit(model, train, world_size=2, epochs=2, val_dataset=val, trial=FakeTrial(after=2))

    package = types.ModuleType("fakeopt_training")

    class TrialPruned(Exception):
        pass

    class Trial(FakeTrial):
        pass

    Trial.__module__ = package.__name__
    package.TrialPruned = TrialPruned  # type: ignore[attr-defined]
    sys.modules[package.__name__] = package
    try:
        trial = Trial(after=3)
        with pytest.raises(TrialPruned):
            fit(model, train, world_size=2, epochs=2, val_dataset=val, trial=trial)
        assert [step for step, _ in trial.reports] == [0, 1, 2]
        assert all(0.0 <= value <= 1.0 for _, value in trial.reports)
    finally:
        del sys.modules[package.__name__]


def test_fit_returns_the_trained_model_and_bad_arguments_fail_clearly() -> None:
    train, val = digits_split(0)
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 10)
    result = fit(model, train, world_size=2, policy="sync", epochs=2, val_dataset=val)
    assert result.history[-1].value is not None and result.history[-1].value > 0.85
    assert result.time_to(0.5) is not None and result.time_s > 0
    with pytest.raises(ConfigError, match="slowdown"):
        launch(_ranks.train_digits, world_size=2, slowdowns=[1.0], args=("sync", 1.0))
    with pytest.raises(ConfigError, match="module-level"):
        launch(lambda ctx: None, world_size=2)


def test_a_frozen_parameter_keeps_the_others_state_and_counters_take_the_maximum() -> None:
    for rank in launch(_ranks.merge_with_a_frozen_and_a_scalar_parameter, world_size=2):
        assert rank["weight_state"] == ["exp_avg", "exp_avg_sq", "step"]  # merged, not wiped
        assert rank["weight_step"] == rank["scale_step"] == 3.0  # the most steps any rank took
        assert rank["bias_state"] == {}


def test_each_group_keeps_its_rate_and_a_scheduler_its_schedule() -> None:
    (result,) = launch(_ranks.lr_of_groups_and_schedule, world_size=1)
    assert result["rates"] == [(0.1, 0.001), (0.05, 0.0005), (0.025, 0.00025)]


def test_launch_leaves_the_callers_excepthook_as_it_was() -> None:
    before = sys.excepthook
    launch(_ranks.add_on_rank1, world_size=1, args=(torch.zeros(1),))
    assert sys.excepthook is before


@pytest.mark.parametrize("slowdowns", [[1.0, float("nan")], [1.0, float("inf")], [1, "fast"]])
def test_slowdowns_must_be_finite_positive_numbers(slowdowns: list[object]) -> None:
    with pytest.raises(ConfigError, match="need 2 finite positive slowdown factors"):
        launch(_ranks.add_on_rank1, world_size=2, slowdowns=slowdowns)


def test_a_failing_rank_is_the_error_launch_raises_and_rank_0_does_not_wait_it_out() -> None:
    import time

    from hwaware_plugins.errors import HwawareError

    with pytest.raises(HwawareError, match="rank 1 failed: ValueError: user bug on rank 1"):
        launch(_ranks.fail_on, world_size=2, args=(1,), timeout_s=60)
    started = time.monotonic()
    with pytest.raises(ValueError, match="user bug on rank 0"):
        launch(_ranks.fail_on, world_size=2, args=(0,), timeout_s=300)
    assert time.monotonic() - started < 60  # not the 300 s the other rank would wait


@pytest.mark.parametrize("policy", ["adaptive", "sync", "ds-sync", "adasync"])
def test_every_rank_ends_with_the_same_batch_norm_statistics(policy: str) -> None:
    first, second = launch(_ranks.batch_norm_statistics, world_size=2, args=(policy,))
    assert first == pytest.approx(second, abs=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: launch(_ranks.add_on_rank1, devices=["gpu"]), "must be 'cpu' or 'cuda:N'"),
        (lambda: launch(_ranks.add_on_rank1, world_size=1.5), "world_size must be an integer"),
    ],
)
def test_launch_arguments_are_checked_before_any_rank_starts(call: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()  # type: ignore[operator]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only build")
def test_a_gpu_device_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="name a GPU but this torch has no CUDA device"):
        launch(_ranks.add_on_rank1, devices=["cuda:0"])


def test_bad_round_and_setting_arguments_are_config_errors() -> None:
    (messages,) = launch(_ranks.misuse_messages, world_size=1)
    assert [m.split(",")[0] for m in messages] == [
        "rounds must be an int >= 0",
        "epochs must be a finite number > 0",
        "seed must be an int",
        "lr must be a finite number > 0",
        "the model has no parameters: there is nothing to train",
    ]
