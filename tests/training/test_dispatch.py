"""Dynamic dispatch: the virtual-clock plan and the store-backed cursor."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.training import CostModel, plan_round
from hwaware_plugins.training._dispatch import StoreCursor


@settings(max_examples=50, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 64), min_size=1, max_size=5),
    samples=st.integers(1, 2000),
    data=st.data(),
)
def test_every_sample_of_the_round_is_handed_out_exactly_once(
    sizes: list[int], samples: int, data: st.DataObject
) -> None:
    slowdowns = data.draw(st.lists(st.floats(0.5, 8.0), min_size=len(sizes), max_size=len(sizes)))
    plan = plan_round([0.0] * len(sizes), sizes, samples, slowdowns=slowdowns, cost=CostModel())
    chunks = sorted(c for rank_chunks in plan.chunks for c in rank_chunks)
    assert chunks[0][0] == 0 and chunks[-1][1] == samples
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
    for rank, rank_chunks in enumerate(plan.chunks):
        assert all(stop - start <= sizes[rank] for start, stop in rank_chunks)
        assert list(plan.ends[rank]) == sorted(plan.ends[rank])


def test_faster_ranks_take_more_batches_and_finish_together() -> None:
    cost = CostModel(per_batch_s=0.0, per_sample_s=1.0)
    plan = plan_round([0.0, 0.0, 0.0], [10, 10, 10], 700, slowdowns=[1, 2, 4], cost=cost)
    assert plan.batches == [40, 20, 10]
    assert max(plan.finish) - min(plan.finish) <= 40.0  # within one slow batch
    again = plan_round([0.0, 0.0, 0.0], [10, 10, 10], 700, slowdowns=[1, 2, 4], cost=cost)
    assert again == plan


def test_a_late_rank_starts_late() -> None:
    cost = CostModel(per_batch_s=1.0, per_sample_s=0.0)
    plan = plan_round([0.0, 4.5], [1, 1], 6, slowdowns=[1, 1], cost=cost)
    assert plan.batches == [5, 1]
    assert plan.arrival(1, 0) == 4.5 and plan.arrival(0, 5) == 5.0


def test_plan_rejects_inconsistent_input() -> None:
    with pytest.raises(ConfigError, match="one entry per rank"):
        plan_round([0.0], [1, 2], 10, slowdowns=[1.0], cost=CostModel())
    with pytest.raises(ConfigError, match=">= 1"):
        plan_round([0.0], [0], 10, slowdowns=[1.0], cost=CostModel())
    with pytest.raises(ConfigError, match="positive batch cost"):
        CostModel(per_batch_s=0.0, per_sample_s=0.0).validate()


def test_store_cursor_hands_out_contiguous_chunks_until_the_round_is_done() -> None:
    torch_dist = pytest.importorskip("torch.distributed")
    cursor = StoreCursor(torch_dist.HashStore(), "job")
    taken = [cursor.take(0, 3, 8), cursor.take(0, 4, 8), cursor.take(0, 3, 8)]
    assert taken == [(0, 3), (3, 7), (7, 8)]
    assert cursor.take(0, 3, 8) is None
    assert cursor.take(1, 5, 8) == (0, 5)  # each round has its own counter


def test_cost_model_measure_fits_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    clock = [0.0]  # a step costs 2 ms + 0.1 ms per sample on this clock, whatever the load
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])

    def step(size: int) -> None:
        clock[0] += 0.002 + size * 0.0001

    model = CostModel.measure(step, sizes=(10, 50), repeats=2)
    assert model.per_sample_s == pytest.approx(1e-4)
    assert model.per_batch_s == pytest.approx(0.002)
    assert model.batch_cost(50) > model.batch_cost(10)
