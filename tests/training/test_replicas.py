"""Each rank owns its replica of the caller's arguments; a pruned trial is not a rank failure."""

from __future__ import annotations

import logging

import pytest
import torch

from hwaware_plugins.cli._bench_sgd import digits_split
from hwaware_plugins.training import PrunedError, fit, launch

from . import _ranks

pytestmark = pytest.mark.timeout(120)


def test_a_spawned_rank_changes_its_own_copy_never_the_callers_tensor() -> None:
    t = torch.zeros(4)
    results = launch(_ranks.add_on_rank1, world_size=2, args=(t,))
    assert results == [0.0, 400.0]
    assert t.tolist() == [0.0, 0.0, 0.0, 0.0]
    assert not t.is_shared()


def _fit_once() -> tuple[list[float | None], list[float]]:
    train, val = digits_split(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    result = fit(model, train, world_size=2, epochs=2, val_dataset=val)
    assert not any(p.is_shared() for p in model.parameters())
    flat = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    return [h.value for h in result.history], flat.tolist()


def test_fit_with_the_model_built_in_the_caller_is_deterministic() -> None:
    values, params = _fit_once()
    again_values, again_params = _fit_once()
    assert values == again_values
    assert params == again_params
    assert values[-1] is not None and values[-1] > 0.8


class _PruneAtOnce:
    def report(self, value: float, step: int) -> None:
        pass

    def should_prune(self) -> bool:
        return True


def test_a_pruned_fit_logs_no_rank_failure(caplog: pytest.LogCaptureFixture) -> None:
    train, val = digits_split(0)
    model = torch.nn.Linear(64, 10)
    with caplog.at_level(logging.DEBUG, logger="hwaware_plugins"), pytest.raises(PrunedError):
        fit(model, train, world_size=2, epochs=1, val_dataset=val, trial=_PruneAtOnce())
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []
    assert any("pruned" in r.getMessage() for r in caplog.records)
