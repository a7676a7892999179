"""The SVG charts: timeline lanes and rows, loss chart axes, stacked bars."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwaware_plugins.reporting import TrialRecord, gantt_chart, loss_chart, stacked_bars
from hwaware_plugins.reporting._axes import BEST_COLOUR, FAIL_COLOUR, colour_map, log_ticks
from hwaware_plugins.reporting._gantt import assign_lanes
from hwaware_plugins.reporting._loss import step_points

SVG = "{http://www.w3.org/2000/svg}"


def _rec(n: int, device: str, start: float, end: float | None, *, subspace: str = "a",
         state: str = "complete", loss: float | None = 0.5) -> TrialRecord:  # fmt: skip
    return TrialRecord(n, state, subspace, device, "cls", None, start, end, loss, None)


@given(st.lists(st.tuples(st.floats(0, 50), st.floats(0, 10)), min_size=1, max_size=30))
def test_lanes_never_overlap(spans: list[tuple[float, float]]) -> None:
    records = [_rec(i, "d", s, s + w) for i, (s, w) in enumerate(spans)]
    lanes = assign_lanes(records, now_s=100.0)
    for a in records:
        for b in records:
            if a.number < b.number and lanes[a.number] == lanes[b.number]:
                assert (a.end_s or 0) <= (b.start_s or 0) + 1e-9 or (b.end_s or 0) <= (
                    a.start_s or 0
                ) + 1e-9


def test_lanes_are_as_many_as_trials_running_at_once() -> None:
    records = [_rec(0, "d", 0, 2), _rec(1, "d", 1, 3), _rec(2, "d", 2, 4), _rec(3, "d", 3, 5)]
    assert sorted(set(assign_lanes(records, now_s=5).values())) == [0, 1]


def test_gantt_has_one_row_per_device_and_marks_failures() -> None:
    records = [
        _rec(0, "gpu:0", 0, 1, subspace="svm"),
        _rec(1, "gpu:1", 0, 2, subspace="mlp", state="fail", loss=None),
        _rec(2, "cpu", 1, None, subspace="svm", state="running", loss=None),
        _rec(3, "cpu", 0, 0.5, subspace="mlp", state="pruned", loss=None),
    ]
    svg = gantt_chart(records, colour_map(["mlp", "svm"]))
    root = ET.fromstring(svg)
    rows = root.findall(f".//{SVG}g[@class='device-row']")
    assert sorted(str(r.get("data-device")) for r in rows) == ["cpu", "gpu:0", "gpu:1"]
    bars = root.findall(f".//{SVG}rect")
    trial_bars = [b for b in bars if (b.get("class") or "").startswith("trial")]
    assert len(trial_bars) == 4
    failed = [b for b in trial_bars if "trial-fail" in (b.get("class") or "")]
    assert failed[0].get("stroke") == FAIL_COLOUR
    legend = [t.text for t in root.findall(f".//{SVG}text[@class='legend-entry']")]
    assert legend[:2] == ["mlp", "svm"] and "failed trial" in legend


def test_gantt_without_started_trials_is_an_error() -> None:
    with pytest.raises(ValueError, match="no trial has started"):
        gantt_chart([TrialRecord(0, "waiting", "a", "d", "c", None, None, None, None, None)], {})


def test_loss_chart_uses_log_scale_for_wide_ranges_and_draws_the_best_line() -> None:
    records = [_rec(i, "cpu", i, i + 1, loss=loss) for i, loss in enumerate([0.9, 0.05, 0.01])]
    svg = loss_chart(records, colour_map(["a"]))
    assert "loss (log scale)" in svg
    root = ET.fromstring(svg)
    (line,) = root.findall(f".//{SVG}polyline[@class='best-loss']")
    assert line.get("stroke") == BEST_COLOUR
    assert len(root.findall(f".//{SVG}g[@class='trial-losses']/{SVG}circle")) == 3
    narrow = loss_chart([_rec(0, "cpu", 0, 1, loss=0.2), _rec(1, "cpu", 1, 2, loss=0.3)], {})
    assert "log scale" not in narrow


def test_step_points_hold_each_best_until_the_next() -> None:
    assert step_points([(1.0, 0.5), (3.0, 0.2)], 5.0) == [
        (1.0, 0.5), (3.0, 0.5), (3.0, 0.2), (5.0, 0.2)
    ]  # fmt: skip


def test_log_ticks_are_round_and_inside() -> None:
    assert log_ticks(0.008, 0.6) == [0.01, 0.02, 0.05, 0.1, 0.2, 0.5]


def test_stacked_bars_segments_and_totals() -> None:
    svg = stacked_bars({"gpu": {"svm": 2.0, "mlp": 6.0}, "cpu": {"svm": 4.0}},
                       colour_map(["mlp", "svm"]), title="t", x_label="s")  # fmt: skip
    root = ET.fromstring(svg)
    rows = root.findall(f".//{SVG}g[@class='bar-row']")
    assert [r.get("data-row") for r in rows] == ["gpu", "cpu"]
    widths = [float(r.get("width") or 0) for r in rows[0].findall(f"{SVG}rect")]
    assert widths[0] == pytest.approx(3 * widths[1], rel=0.01)  # mlp 6 vs svm 2
    assert re.search(r">8<", svg)
    with pytest.raises(ValueError, match=">= 0"):
        stacked_bars({"a": {"x": -1.0}}, {}, title="t", x_label="s")
