"""A small dependency-free SVG line-chart writer (reused by HTML reports).

:func:`line_chart` turns named series of (x, y) points into a standalone SVG
document: axes with round-number ticks, one coloured polyline per series and a
legend. Points with ``y = None`` or NaN break the line. Cost: O(points).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

PALETTE: tuple[str, ...] = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")

Point = tuple[float, float | None]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2, 5 x 10^k steps) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("tick bounds must be finite")
    if high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def line_chart(
    series: Mapping[str, Sequence[Point]],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    width: int = 640,
    height: int = 400,
) -> str:
    """An SVG document plotting each named series as a line.

    :raises ValueError: when no series holds a finite point.
    """
    finite = [
        (x, y)
        for pts in series.values()
        for x, y in pts
        if y is not None and math.isfinite(x) and math.isfinite(y)
    ]
    if not finite:
        raise ValueError("line_chart needs at least one finite point")
    x_lo, x_hi = min(p[0] for p in finite), max(p[0] for p in finite)
    y_lo, y_hi = min(p[1] for p in finite), max(p[1] for p in finite)
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 0.5 * (abs(y_lo) or 1.0), y_hi + 0.5 * (abs(y_hi) or 1.0)
    if x_hi == x_lo:
        x_hi = x_lo + 1.0
    left, right, top, bottom = 70, 150, 40, 50
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * pw

    def sy(y: float) -> float:
        return top + (1.0 - (y - y_lo) / (y_hi - y_lo)) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2:.1f}" y="22" text-anchor="middle" font-size="14">'
        f"{escape(title)}</text>",
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>',
    ]
    for t in nice_ticks(x_lo, x_hi):
        if x_lo <= t <= x_hi:
            out.append(
                f'<line x1="{sx(t):.1f}" y1="{top + ph}" x2="{sx(t):.1f}" y2="{top + ph + 5}" '
                f'stroke="#333"/><text x="{sx(t):.1f}" y="{top + ph + 18}" '
                f'text-anchor="middle">{_fmt(t)}</text>'
            )
    for t in nice_ticks(y_lo, y_hi):
        if y_lo <= t <= y_hi:
            out.append(
                f'<line x1="{left}" y1="{sy(t):.1f}" x2="{left + pw}" y2="{sy(t):.1f}" '
                f'stroke="#ddd"/><text x="{left - 6}" y="{sy(t) + 4:.1f}" '
                f'text-anchor="end">{_fmt(t)}</text>'
            )
    out.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 10}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    out.append(
        f'<text x="16" y="{top + ph / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {top + ph / 2:.1f})">{escape(y_label)}</text>'
    )
    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        for run in _segments(pts):
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in run)
            out.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        ly = top + 16 + 18 * i
        out.append(
            f'<line x1="{left + pw + 12}" y1="{ly - 4}" x2="{left + pw + 32}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="2"/><text x="{left + pw + 38}" y="{ly}">'
            f"{escape(name)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _segments(points: Sequence[Point]) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None or not math.isfinite(y) or not math.isfinite(x):
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((x, y))
    return [r for r in runs if r]


def best_loss_chart(report: Mapping[str, Any], *, title: str | None = None) -> str:
    """The median best-loss-over-time plot of a ``run_benchmark`` report."""
    curves = report["curves"]
    hours = curves["hours"]
    series = {
        name: list(zip(hours, values, strict=True))
        for name, values in curves.items()
        if name != "hours"
    }
    settings = report.get("settings", {})
    default = (
        f"median best loss, {settings.get('workers', '?')} workers, "
        f"{settings.get('seeds', '?')} seeds"
    )
    return line_chart(
        series, title=title or default, x_label="virtual hours", y_label="best loss so far"
    )
