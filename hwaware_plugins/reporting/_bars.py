"""Horizontal stacked bar charts (e.g. device time per device class, split by subspace)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from xml.sax.saxutils import escape

from hwaware_plugins.reporting._axes import (
    Frame,
    border,
    fmt,
    legend,
    legend_width,
    svg_open,
    x_axis,
)

BAR_HEIGHT = 24
BAR_GAP = 12


def stacked_bars(
    table: Mapping[str, Mapping[str, float]],
    colours: Mapping[str, str],
    *,
    title: str,
    x_label: str,
    total_label: Callable[[float], str] = fmt,
    width: int = 630,
    show_legend: bool = True,
) -> str:
    """An SVG with one horizontal bar per row of ``table``, split into coloured segments.

    ``table`` is ``{row: {segment: value >= 0}}``; segments are drawn in the
    order of ``colours`` (unknown segments grey, last). The row total is written
    after each bar with ``total_label``. Cost: O(rows x segments).

    :raises ValueError: an empty table or a negative value.
    """
    if not table:
        raise ValueError("stacked_bars needs at least one row")
    if any(v < 0 for row in table.values() for v in row.values()):
        raise ValueError("stacked_bars values must be >= 0")
    order = list(colours) + sorted({s for row in table.values() for s in row} - set(colours))
    totals = {name: sum(row.values()) for name, row in table.items()}
    label_w = min(220, 16 + 7 * max(len(name) for name in table))
    segments_used = [s for s in order if any(s in row for row in table.values())]
    legend_w = legend_width(segments_used) + 16 if show_legend else 0
    rows_h = len(table) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP
    legend_h = 20 * len(segments_used) + 8 if show_legend else 0
    frame = Frame(
        left=label_w, top=44, width=width - label_w - legend_w - 90,
        height=max(rows_h, legend_h), x_lo=0.0, x_hi=max(totals.values()) or 1.0,
        y_lo=0.0, y_hi=1.0,
    )  # fmt: skip
    height = int(frame.bottom + 56)
    out = [svg_open(width, height, title, css_class="chart bars")]
    out.append(x_axis(frame, label=x_label))
    y = frame.top + BAR_GAP
    for name, row in table.items():
        x = frame.left
        out.append(f'<g class="bar-row" data-row="{escape(name)}">')
        out.append(
            f'<text x="{frame.left - 8}" y="{y + BAR_HEIGHT / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(name)}</text>'
        )
        for segment in order:
            value = row.get(segment, 0.0)
            if value <= 0:
                continue
            w = frame.sx(value) - frame.left
            out.append(
                f'<rect class="segment" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                f'height="{BAR_HEIGHT}" fill="{colours.get(segment, "#aaa")}">'
                f"<title>{escape(name)} / {escape(segment)}: {fmt(value)}</title></rect>"
            )
            x += w
        out.append(
            f'<text x="{x + 6:.1f}" y="{y + BAR_HEIGHT / 2 + 4:.1f}" fill="#333">'
            f"{escape(total_label(totals[name]))}</text></g>"
        )
        y += BAR_HEIGHT + BAR_GAP
    out.append(border(frame))
    if show_legend:
        entries = [(s, colours.get(s, "#aaa"), "box") for s in segments_used]
        out.append(legend(entries, x=frame.left + frame.width + 90, y=frame.top))
    out.append("</svg>")
    return "\n".join(out) + "\n"
