"""Shared pieces of the report's SVG charts: colours, a plot frame with ticks, legends.

Every function returns SVG markup as a string; nothing here reads files or
imports a plotting library. Ticks come from :func:`~hwaware_plugins.reporting._svg.nice_ticks`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from hwaware_plugins.reporting._svg import nice_ticks

SUBSPACE_COLOURS: tuple[str, ...] = (
    "#4269d0",  # blue
    "#efb118",  # amber
    "#3ca951",  # green
    "#ff725c",  # coral
    "#6cc5b0",  # teal
    "#a463f2",  # violet
    "#ff8ab7",  # pink
    "#9c6b4e",  # brown
    "#97bbf5",  # light blue
    "#8e8e8e",  # grey
)
"""Colours given to subspaces in :func:`colour_map` order (they repeat past ten)."""

BEST_COLOUR = "#14305e"
"""The best-loss-so-far line (a navy used nowhere else, so screenshots can find it)."""

ROW_FILL = "#eef1f6"
"""Background of a timeline row (used nowhere else)."""

FAIL_COLOUR = "#c0001a"
"""Outline and cross of failed trials."""

FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="13"'


def colour_map(names: Sequence[str]) -> dict[str, str]:
    """A colour per name, in the given order."""
    return {n: SUBSPACE_COLOURS[i % len(SUBSPACE_COLOURS)] for i, n in enumerate(names)}


def fmt(value: float) -> str:
    """A tick label: 4 significant digits, no trailing noise."""
    return f"{value:.4g}"


def time_unit(max_seconds: float) -> tuple[float, str]:
    """``(divisor, unit)`` to show times up to ``max_seconds``: seconds, minutes or hours."""
    if max_seconds < 180:
        return 1.0, "s"
    if max_seconds < 3 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks 1, 2, 5 x 10^k inside ``[low, high]`` (``0 < low < high``), thinned to <= 8."""
    ticks = []
    for power in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0**power
            if low <= value * (1 + 1e-9) and value <= high * (1 + 1e-9):
                ticks.append(value)
    while len(ticks) > 8:
        ticks = ticks[::2]
    return ticks


@dataclass(frozen=True)
class Frame:
    """The plot area of a chart and the data ranges it maps (optionally log-scaled in y)."""

    left: float
    top: float
    width: float
    height: float
    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float
    log_y: bool = False

    def sx(self, x: float) -> float:
        """Pixel x of data x."""
        span = self.x_hi - self.x_lo or 1.0
        return self.left + (x - self.x_lo) / span * self.width

    def sy(self, y: float) -> float:
        """Pixel y of data y (top of the frame is ``y_hi``)."""
        lo, hi, v = self.y_lo, self.y_hi, y
        if self.log_y:
            lo, hi, v = math.log10(lo), math.log10(hi), math.log10(max(y, self.y_lo))
        span = hi - lo or 1.0
        return self.top + (1.0 - (v - lo) / span) * self.height

    @property
    def bottom(self) -> float:
        """Pixel y of the x axis."""
        return self.top + self.height


def svg_open(width: int, height: int, title: str, *, css_class: str = "chart") -> str:
    """The opening ``<svg>`` tag, a white background and a centred title."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" {FONT} role="img" '
        f'aria-label="{escape(title)}">\n<title>{escape(title)}</title>\n'
        f'<rect width="{width}" height="{height}" fill="white"/>\n'
        f'<text x="{width / 2:.1f}" y="22" text-anchor="middle" font-size="15" '
        f'font-weight="600">{escape(title)}</text>'
    )


def x_axis(frame: Frame, *, label: str, scale: float = 1.0, grid: bool = True) -> str:
    """Ticks and a label under the frame; tick labels are data values divided by ``scale``."""
    out = []
    for tick in nice_ticks(frame.x_lo / scale, frame.x_hi / scale, 6):
        x = frame.sx(tick * scale)
        if grid:
            out.append(
                f'<line x1="{x:.1f}" y1="{frame.top}" x2="{x:.1f}" y2="{frame.bottom}" '
                f'stroke="#e6e6e6"/>'
            )
        out.append(
            f'<line x1="{x:.1f}" y1="{frame.bottom}" x2="{x:.1f}" y2="{frame.bottom + 5}" '
            f'stroke="#333"/><text x="{x:.1f}" y="{frame.bottom + 19}" '
            f'text-anchor="middle">{fmt(tick)}</text>'
        )
    out.append(
        f'<text x="{frame.left + frame.width / 2:.1f}" y="{frame.bottom + 40}" '
        f'text-anchor="middle">{escape(label)}</text>'
    )
    return "\n".join(out)


def y_axis(frame: Frame, *, label: str) -> str:
    """Ticks, grid lines and a rotated label left of the frame (log ticks when ``log_y``)."""
    if frame.log_y:
        ticks = log_ticks(frame.y_lo, frame.y_hi)
    else:
        ticks = [t for t in nice_ticks(frame.y_lo, frame.y_hi, 6) if frame.y_lo <= t <= frame.y_hi]
    out = []
    for tick in ticks:
        y = frame.sy(tick)
        out.append(
            f'<line x1="{frame.left}" y1="{y:.1f}" x2="{frame.left + frame.width}" '
            f'y2="{y:.1f}" stroke="#e6e6e6"/><text x="{frame.left - 7}" y="{y + 4:.1f}" '
            f'text-anchor="end">{fmt(tick)}</text>'
        )
    mid = frame.top + frame.height / 2
    out.append(
        f'<text x="18" y="{mid:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 18 {mid:.1f})">{escape(label)}</text>'
    )
    return "\n".join(out)


def border(frame: Frame) -> str:
    """The frame's outline."""
    return (
        f'<rect x="{frame.left}" y="{frame.top}" width="{frame.width}" '
        f'height="{frame.height}" fill="none" stroke="#333"/>'
    )


def legend_width(labels: Sequence[str]) -> int:
    """Pixels a :func:`legend` of these labels needs (about 7.5 px a character at 13 px)."""
    return 44 + int(7.5 * max((len(label) for label in labels), default=0))


def legend(entries: Sequence[tuple[str, str, str]], *, x: float, y: float) -> str:
    """A vertical legend at (x, y); entries are ``(label, colour, mark)``.

    ``mark`` is ``"box"`` (a filled square), ``"line"``, ``"dot"`` or ``"fail"``
    (an outlined square with a cross).
    """
    out = ['<g class="legend">']
    for i, (label, colour, mark) in enumerate(entries):
        top = y + 20 * i
        if mark == "line":
            out.append(
                f'<line x1="{x}" y1="{top + 6}" x2="{x + 18}" y2="{top + 6}" '
                f'stroke="{colour}" stroke-width="3"/>'
            )
        elif mark == "dot":
            out.append(f'<circle cx="{x + 9}" cy="{top + 6}" r="4.5" fill="{colour}"/>')
        elif mark == "fail":
            out.append(cross(x + 9, top + 6, 6, stroke="#666"))
            out.append(
                f'<rect x="{x + 2}" y="{top - 1}" width="14" height="14" fill="none" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        else:
            out.append(f'<rect x="{x + 2}" y="{top - 1}" width="14" height="14" fill="{colour}"/>')
        out.append(f'<text x="{x + 24}" y="{top + 11}" class="legend-entry">{escape(label)}</text>')
    out.append("</g>")
    return "\n".join(out)


def cross(cx: float, cy: float, half: float, *, stroke: str = FAIL_COLOUR) -> str:
    """An x-shaped mark centred at (cx, cy)."""
    return (
        f'<path d="M{cx - half:.1f},{cy - half:.1f}L{cx + half:.1f},{cy + half:.1f}'
        f'M{cx - half:.1f},{cy + half:.1f}L{cx + half:.1f},{cy - half:.1f}" '
        f'stroke="{stroke}" stroke-width="2"/>'
    )
