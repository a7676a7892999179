"""``PlacedSampler``: the worker-side sampler places trials on its slot without a lease."""

from __future__ import annotations

from pathlib import Path

import optuna
from hwaware_optuna import device_for
from hwaware_optuna._placed import HeldSlot, PlacedSampler

from ._helpers import gpu, two_branch


def test_trials_are_placed_on_the_held_slot_and_take_no_lease(tmp_path: Path) -> None:
    slot = HeldSlot(gpu(3), "test-host/gpu:3#1")
    sampler = PlacedSampler(slot, seed=0, state_dir=tmp_path / "pool")
    study = optuna.create_study(sampler=sampler)
    held: list[int] = []

    def objective(trial: optuna.trial.Trial) -> float:
        assert device_for(trial) == slot.device
        held.append(len(sampler._get_runtime().pool.active_leases()))
        return two_branch(trial)

    study.optimize(objective, n_trials=6)
    assert held == [0] * 6  # the executor's lease is the trial's only one
    for trial in study.trials:
        assert trial.user_attrs["hwaware:slot_id"] == "test-host/gpu:3#1"
        assert trial.user_attrs["hwaware:device_id"] == "gpu:3"


def test_fresh_seeded_samplers_do_not_repeat_draws_and_are_repeatable() -> None:
    # A fresh worker process builds a fresh sampler from the same settings for each trial.
    def draws() -> list[float]:
        storage = optuna.storages.InMemoryStorage()
        optuna.create_study(study_name="s", storage=storage)
        for _ in range(4):
            sampler = PlacedSampler(HeldSlot(gpu(0), "gpu:0#0"), seed=7)
            study = optuna.load_study(study_name="s", storage=storage, sampler=sampler)
            study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
        return [t.params["x"] for t in study.trials]

    first = draws()
    assert len(set(first)) == 4
    assert draws() == first
