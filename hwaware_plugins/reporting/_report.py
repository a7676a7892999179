"""The study report: :func:`build_report` from trial records, :func:`render_report` from a study."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from hwaware_plugins import __version__
from hwaware_plugins.reporting._axes import colour_map
from hwaware_plugins.reporting._bars import stacked_bars
from hwaware_plugins.reporting._gantt import gantt_chart
from hwaware_plugins.reporting._html import facts, html_table, page, swatch
from hwaware_plugins.reporting._loss import loss_chart
from hwaware_plugins.reporting._records import TrialRecord, records_from_trials
from hwaware_plugins.reporting._summary import (
    cross_tab,
    failures_by_kind,
    subspace_order,
    summarize_subspaces,
)


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value < 120 else f"{value / 60:.3g} min"


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _trial_label(record: TrialRecord) -> str:
    """``#12 (model=svm)``; a label already in parentheses (``(not placed)``) is kept as is."""
    subspace = record.subspace
    return f"#{record.number} {subspace if subspace.startswith('(') else f'({subspace})'}"


def _headline(records: Sequence[TrialRecord]) -> str:
    states = [r.state for r in records]
    done = [r for r in records if r.loss is not None]
    best = min(done, key=lambda r: r.loss or 0.0) if done else None
    span = max((r.end_s or r.start_s or 0.0) for r in records) if records else 0.0
    items = {
        "trials": str(len(records)),
        "complete": str(states.count("complete")),
        "failed": str(states.count("fail")),
        "pruned": str(states.count("pruned")),
        "best loss": _loss(best.loss if best else None),
        "best trial": "-" if best is None else _trial_label(best),
        "devices": str(len({r.device_id for r in records})),
        "wall time": _seconds(span),
    }
    if states.count("running"):
        items["running"] = str(states.count("running"))
    return facts(items)


def _chart_or_note(draw: Any, *args: Any, **kwargs: Any) -> str:
    try:
        return str(draw(*args, **kwargs))
    except ValueError as exc:
        return f'<p class="empty">{exc}.</p>'


def _subspace_table(records: Sequence[TrialRecord], colours: Mapping[str, str]) -> str:
    rows = [
        [
            swatch(colours.get(s.subspace, "#999"), s.subspace),
            str(s.trials),
            str(s.complete),
            str(s.failed),
            _loss(s.best_loss),
            ", ".join(s.devices),
            f"{s.time_s:.3g}",
        ]
        for s in summarize_subspaces(records)
    ]
    columns = ["subspace", "trials", "complete", "failed", "best loss", "devices"]
    columns.append("device time (s)")
    return html_table(columns, rows, numeric=[False, True, True, True, True, False, True])


def _usage_section(records: Sequence[TrialRecord], colours: Mapping[str, str]) -> str:
    if not records:
        return '<p class="empty">No trials yet.</p>'
    time_chart = stacked_bars(
        cross_tab(records, measure="time"), colours,
        title="Device time per device class, by subspace", x_label="seconds of device time",
        total_label=_seconds, show_legend=False,
    )  # fmt: skip
    trials_chart = stacked_bars(
        cross_tab(records, measure="trials"), colours,
        title="Trials per device class, by subspace", x_label="trials",
        total_label=lambda v: f"{v:.0f} trials", show_legend=False,
    )  # fmt: skip
    return f'<div class="row">{time_chart}{trials_chart}</div>\n' + _subspace_table(
        records, colours
    )


def _failures_section(records: Sequence[TrialRecord]) -> str:
    rows = [[kind, str(n), ", ".join(where)] for kind, n, where in failures_by_kind(records)]
    if not rows:
        return '<p class="empty">No failed or pruned trials.</p>'
    return html_table(["kind", "trials", "device classes"], rows, numeric=[False, True, False])


def build_report(
    records: Sequence[TrialRecord],
    *,
    title: str,
    subtitle: str = "",
) -> str:
    """The HTML report for trial records: timeline, loss over time, usage, failures.

    The page is self-contained (inline CSS and SVG, no script, no external
    asset) and works for an empty study. Cost: O(n log n) in trials.
    """
    colours = colour_map(subspace_order(records))
    sections = [
        ("", _headline(records)),
        ("Placement timeline", _chart_or_note(gantt_chart, records, colours)),
        ("Loss over time", _chart_or_note(loss_chart, records, colours)),
        ("Trials and time per subspace and device class", _usage_section(records, colours)),
        ("Failures by kind", _failures_section(records)),
    ]
    footer = f"hwaware-plugins {__version__}, generated {datetime.now():%Y-%m-%d %H:%M:%S}"
    return page(title, subtitle, sections, footer)


def render_report(study: Any) -> str:
    """The HTML report of an Optuna study run with ``hwaware_optuna.HardwareAwareSampler``.

    Reads ``study.get_trials(deepcopy=False)`` and the trials' ``hwaware:*``
    user attributes; works (with fewer details) for studies run without the
    plugin. Duck-typed: the core does not import optuna. Returns the HTML text;
    cost O(n log n) in trials plus one storage read.
    """
    trials = study.get_trials(deepcopy=False)
    directions = [d.name for d in study.directions]
    maximize = bool(directions) and directions[0] == "MAXIMIZE"
    records = records_from_trials(trials, maximize=maximize)
    goal = "maximised (shown as loss = -value)" if maximize else "minimised"
    subtitle = f"Optuna study, first objective {goal}; {len(records)} trials."
    return build_report(records, title=f"Study {study.study_name}", subtitle=subtitle)
