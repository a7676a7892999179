"""Loss over time: every completed trial as a dot, and the best loss so far as a step line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

from hwaware_plugins.reporting._axes import (
    BEST_COLOUR,
    Frame,
    border,
    legend,
    legend_width,
    svg_open,
    time_unit,
    x_axis,
    y_axis,
)
from hwaware_plugins.reporting._records import TrialRecord
from hwaware_plugins.reporting._summary import best_so_far

LOG_RATIO = 20.0
"""Use a log y axis when the largest loss is this many times the smallest (all > 0)."""


def step_points(steps: Sequence[tuple[float, float]], end_s: float) -> list[tuple[float, float]]:
    """The corners of a staircase through ``steps`` (time, best), held until ``end_s``. Pure."""
    points: list[tuple[float, float]] = []
    for i, (t, best) in enumerate(steps):
        if i:
            points.append((t, steps[i - 1][1]))
        points.append((t, best))
    if steps:
        points.append((max(end_s, steps[-1][0]), steps[-1][1]))
    return points


def loss_chart(
    records: Sequence[TrialRecord],
    colours: Mapping[str, str],
    *,
    title: str = "Loss of each completed trial, and the best loss so far",
    width: int = 1280,
    height: int = 440,
) -> str:
    """An SVG scatter of completed trials' losses (by subspace) with the best-so-far line.

    The y axis is logarithmic when all losses are positive and span more than
    :data:`LOG_RATIO`. Cost: O(trials).

    :raises ValueError: when no completed trial has a finite loss and an end time.
    """
    done = [r for r in records if r.loss is not None and r.end_s is not None]
    if not done:
        raise ValueError("no completed trial with a loss: nothing to plot")
    losses = [r.loss for r in done if r.loss is not None]
    lo, hi = min(losses), max(losses)
    log_y = lo > 0 and hi / lo > LOG_RATIO
    if log_y:
        y_lo, y_hi = lo / 1.25, hi * 1.25
    else:
        pad = (hi - lo) * 0.06 or (abs(hi) * 0.1 or 1.0)
        y_lo, y_hi = lo - pad, hi + pad
    end_s = max(r.end_s or 0.0 for r in records)
    entries = [("best loss so far", BEST_COLOUR, "line")]
    entries += [(name, colour, "dot") for name, colour in colours.items()]
    frame = Frame(
        left=80, top=44, width=width - 80 - legend_width([e[0] for e in entries]) - 16,
        height=height - 44 - 64, x_lo=0.0, x_hi=max(end_s, 1e-3), y_lo=y_lo, y_hi=y_hi,
        log_y=log_y,
    )  # fmt: skip
    divisor, unit = time_unit(frame.x_hi)
    y_label = "loss (log scale)" if log_y else "loss"
    out = [svg_open(width, height, title, css_class="chart loss")]
    out.append(y_axis(frame, label=y_label))
    out.append(x_axis(frame, label=f"time since the first trial started ({unit})", scale=divisor,
                      grid=False))  # fmt: skip
    out.append('<g class="trial-losses">')
    for r in done:
        loss = r.loss if r.loss is not None else 0.0
        out.append(
            f'<circle cx="{frame.sx(r.end_s or 0.0):.1f}" cy="{frame.sy(loss):.1f}" r="4" '
            f'fill="{colours.get(r.subspace, "#999")}" fill-opacity="0.8">'
            f"<title>trial {r.number}: {escape(r.subspace)}, loss {loss:.4g}</title></circle>"
        )
    out.append("</g>")
    corners = step_points(best_so_far(done), end_s)
    path = " ".join(f"{frame.sx(t):.1f},{frame.sy(v):.1f}" for t, v in corners)
    out.append(
        f'<polyline class="best-loss" points="{path}" fill="none" stroke="{BEST_COLOUR}" '
        f'stroke-width="3"/>'
    )
    out.append(border(frame))
    out.append(legend(entries, x=frame.left + frame.width + 16, y=frame.top))
    out.append("</svg>")
    return "\n".join(out) + "\n"
