"""A self-contained HTML page: inline CSS, inline SVG, no scripts and no external assets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px 32px;
       color: #1d1f23; background: #fff; max-width: 1320px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 30px 0 8px; border-bottom: 1px solid #e2e4e8; padding-bottom: 4px; }
p.sub { color: #555; margin: 0 0 14px; }
.facts { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0 4px; }
.fact { border: 1px solid #e2e4e8; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.fact b { display: block; font-size: 20px; }
.fact span { color: #555; font-size: 12px; }
.row { display: flex; flex-wrap: wrap; gap: 16px; }
svg.chart { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border-bottom: 1px solid #e2e4e8; padding: 5px 12px; text-align: left; }
th { background: #f6f7f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px;
          vertical-align: -1px; border-radius: 2px; }
.empty { color: #666; font-style: italic; }
footer { color: #777; font-size: 12px; margin-top: 36px; }
"""


def html_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: Sequence[bool] | None = None,
    css_class: str = "",
) -> str:
    """An HTML table; cells are escaped unless they start with ``<span class="swatch"``.

    ``numeric`` right-aligns the matching columns.
    """
    right = list(numeric) if numeric is not None else [False] * len(columns)
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for cell, is_num in zip(row, right, strict=True):
            text = cell if cell.startswith('<span class="swatch"') else escape(cell)
            cells.append(f'<td class="num">{text}</td>' if is_num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = f' class="{css_class}"' if css_class else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def swatch(colour: str, label: str) -> str:
    """A coloured square followed by an escaped label (a table cell)."""
    return f'<span class="swatch" style="background:{colour}"></span>{escape(label)}'


def facts(items: Mapping[str, str]) -> str:
    """A row of headline numbers: ``{caption: value}``."""
    boxes = "".join(
        f'<div class="fact"><b>{escape(value)}</b><span>{escape(caption)}</span></div>'
        for caption, value in items.items()
    )
    return f'<div class="facts">{boxes}</div>'


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]], footer: str) -> str:
    """The whole document; ``sections`` are ``(heading, html body)`` pairs (body not escaped)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(subtitle)}</p>',
    ]
    for heading, body in sections:
        anchor = "".join(ch if ch.isalnum() else "-" for ch in heading.lower()).strip("-")
        head = f'<section id="{anchor}"><h2>{escape(heading)}</h2>'
        parts.append(f"{head}\n{body}\n</section>" if heading else body)
    parts.append(f"<footer>{escape(footer)}</footer></body></html>")
    return "\n".join(parts) + "\n"
