"""The placement timeline: one row per device, one bar per trial, coloured by subspace."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

from hwaware_plugins.reporting._axes import (
    FAIL_COLOUR,
    ROW_FILL,
    Frame,
    border,
    cross,
    legend,
    legend_width,
    svg_open,
    time_unit,
    x_axis,
)
from hwaware_plugins.reporting._records import TrialRecord

LANE_HEIGHT = 18
ROW_GAP = 10
MIN_ROW_HEIGHT = 32  # room for the device name and its class under it
LABEL_WIDTH = 190


def assign_lanes(records: Sequence[TrialRecord], now_s: float) -> dict[int, int]:
    """Trial number -> lane within its device row, so that bars in a lane never overlap.

    Greedy interval packing in start order (optimal: as many lanes as the most
    trials running at once). Running trials end at ``now_s``. Cost: O(n log n + n x lanes).
    """
    lanes: dict[int, int] = {}
    ends: list[float] = []
    timed = sorted(
        (r for r in records if r.start_s is not None), key=lambda r: (r.start_s, r.number)
    )
    for r in timed:
        start = r.start_s or 0.0
        end = r.end_s if r.end_s is not None else now_s
        for lane, lane_end in enumerate(ends):
            if lane_end <= start + 1e-9:
                ends[lane] = end
                lanes[r.number] = lane
                break
        else:
            lanes[r.number] = len(ends)
            ends.append(end)
    return lanes


def _bar(r: TrialRecord, frame: Frame, y: float, now_s: float, colour: str) -> str:
    start = r.start_s or 0.0
    end = r.end_s if r.end_s is not None else now_s
    x0 = frame.sx(start)
    width = max(2.0, frame.sx(end) - x0)
    height = LANE_HEIGHT - 4
    loss = "" if r.loss is None else f", loss {r.loss:.4g}"
    tip = (
        f"trial {r.number}: {r.subspace} on {r.device_id}, {r.state}{loss}, "
        f"{r.duration_s:.3g} s" + (f" ({r.fail_kind})" if r.fail_kind else "")
    )
    attrs = f'class="trial trial-{r.state}" data-subspace="{escape(r.subspace)}"'
    opacity = ' fill-opacity="0.45"' if r.state == "pruned" else ""
    stroke = ""
    if r.state == "fail":
        stroke = f' stroke="{FAIL_COLOUR}" stroke-width="2"'
    elif r.state == "running":
        stroke = ' stroke="#333" stroke-dasharray="3 2"'
    out = (
        f'<rect {attrs} x="{x0:.1f}" y="{y + 2:.1f}" width="{width:.1f}" '
        f'height="{height}" fill="{colour}"{opacity}{stroke}><title>{escape(tip)}</title></rect>'
    )
    if r.state == "fail":
        out += cross(x0 + width / 2, y + LANE_HEIGHT / 2, 4.5)
    return out


def gantt_chart(
    records: Sequence[TrialRecord],
    colours: Mapping[str, str],
    *,
    title: str = "One row per device, one bar per trial, coloured by subspace",
    width: int = 1280,
) -> str:
    """An SVG timeline with one row per device (sub-lanes for concurrent trials).

    Bars are coloured by subspace (``colours``), failed trials have a red outline
    and a cross, pruned trials are pale, running ones dashed. Hovering a bar
    shows the trial (SVG ``<title>``). Cost: O(n log n) in trials.

    :raises ValueError: when no trial has a start time.
    """
    timed = [r for r in records if r.start_s is not None]
    if not timed:
        raise ValueError("no trial has started yet: nothing to draw on a timeline")
    now_s = max(max((r.end_s or 0.0) for r in timed), max((r.start_s or 0.0) for r in timed))
    by_device: dict[str, list[TrialRecord]] = defaultdict(list)
    for r in timed:
        by_device[r.device_id].append(r)
    lanes = {d: assign_lanes(rs, now_s) for d, rs in by_device.items()}
    lane_counts = {d: max(ls.values()) + 1 for d, ls in lanes.items()}
    row_heights = {d: max(n * LANE_HEIGHT, MIN_ROW_HEIGHT) for d, n in lane_counts.items()}
    rows_h = sum(h + ROW_GAP for h in row_heights.values())
    entries = [(name, colours[name], "box") for name in colours]
    states = {r.state for r in timed}
    if "fail" in states:
        entries.append(("failed trial", FAIL_COLOUR, "fail"))
    if "pruned" in states:
        entries.append(("pruned trial (pale)", "#bbbbbb", "box"))
    top = 44
    frame = Frame(
        left=LABEL_WIDTH,
        top=top,
        width=width - LABEL_WIDTH - legend_width([e[0] for e in entries]) - 16,
        height=max(rows_h, 20 * len(entries) + 8, 60),
        x_lo=0.0,
        x_hi=max(now_s, 1e-3),
        y_lo=0.0,
        y_hi=1.0,
    )
    height = int(frame.bottom + 56)
    divisor, unit = time_unit(frame.x_hi)
    out = [svg_open(width, height, title, css_class="chart gantt")]
    out.append(x_axis(frame, label=f"time since the first trial started ({unit})", scale=divisor))
    y = float(top + ROW_GAP / 2)
    for device in sorted(by_device):
        n_lanes = lane_counts[device]
        row_h = row_heights[device]
        first_lane_y = y + (row_h - n_lanes * LANE_HEIGHT) / 2
        classes = sorted({r.device_class for r in by_device[device]})
        label_y = y + row_h / 2 - 2
        out.append(f'<g class="device-row" data-device="{escape(device)}">')
        out.append(
            f'<rect x="{frame.left}" y="{y - ROW_GAP / 2:.1f}" width="{frame.width}" '
            f'height="{row_h + ROW_GAP}" fill="{ROW_FILL}" stroke="#e2e4e8"/>'
        )
        out.append(
            f'<text x="{frame.left - 10}" y="{label_y:.1f}" text-anchor="end" '
            f'font-weight="600">{escape(device)}</text>'
            f'<text x="{frame.left - 10}" y="{label_y + 14:.1f}" text-anchor="end" '
            f'fill="#666" font-size="11">{escape(", ".join(classes))}, {n_lanes} lane'
            f"{'s' if n_lanes > 1 else ''}</text>"
        )
        for r in by_device[device]:
            lane_y = first_lane_y + lanes[device][r.number] * LANE_HEIGHT
            out.append(_bar(r, frame, lane_y, now_s, colours.get(r.subspace, "#999")))
        out.append("</g>")
        y += row_h + ROW_GAP
    out.append(border(frame))
    out.append(legend(entries, x=frame.left + frame.width + 16, y=top))
    out.append("</svg>")
    return "\n".join(out) + "\n"
