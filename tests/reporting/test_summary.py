"""Aggregations behind the report's tables and charts."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwaware_plugins.reporting import TrialRecord
from hwaware_plugins.reporting._summary import (
    best_so_far,
    cross_tab,
    failures_by_kind,
    summarize_subspaces,
)


def _rec(n: int, subspace: str, device: str, loss: float | None, *, state: str = "complete",
         start: float = 0.0, end: float = 1.0, fail: str | None = None) -> TrialRecord:  # fmt: skip
    return TrialRecord(n, state, subspace, device, device.split(":")[0], None, start, end,
                       loss, fail)  # fmt: skip


RECORDS = [
    _rec(0, "svm", "gpu:0", 0.3, end=2.0),
    _rec(1, "svm", "cpu:0", 0.1, end=3.0),
    _rec(2, "mlp", "gpu:0", None, state="fail", fail="oom"),
    _rec(3, "mlp", "gpu:1", 0.2),
    _rec(4, "knn", "cpu:0", None, state="pruned", fail="pruned"),
]


def test_subspaces_sorted_by_best_loss_with_devices_and_time() -> None:
    rows = summarize_subspaces(RECORDS)
    assert [r.subspace for r in rows] == ["svm", "mlp", "knn"]
    svm = rows[0]
    assert (svm.trials, svm.complete, svm.best_loss, svm.devices) == (2, 2, 0.1, ("cpu:0", "gpu:0"))
    assert svm.time_s == pytest.approx(5.0)
    assert rows[1].failed == 1


def test_cross_tab_counts_trials_and_time_per_device_class() -> None:
    assert cross_tab(RECORDS, measure="trials") == {
        "cpu": {"svm": 1.0, "knn": 1.0},
        "gpu": {"svm": 1.0, "mlp": 2.0},
    }
    assert cross_tab(RECORDS, measure="time")["gpu"]["svm"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="measure"):
        cross_tab(RECORDS, measure="memory")


def test_failures_by_kind() -> None:
    assert failures_by_kind(RECORDS) == [("oom", 1, ["gpu"]), ("pruned", 1, ["cpu"])]


@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 1)), min_size=1, max_size=40))
def test_best_so_far_is_decreasing_and_ends_at_the_minimum(
    points: list[tuple[float, float]],
) -> None:
    records = [_rec(i, "s", "cpu:0", loss, end=end) for i, (end, loss) in enumerate(points)]
    steps = best_so_far(records)
    assert [t for t, _ in steps] == sorted(t for t, _ in steps)
    assert all(b < a for (_, a), (_, b) in itertools.pairwise(steps))
    assert steps[-1][1] == min(loss for _, loss in points)
