"""render_report on a real Optuna study: structure, self-containment, legends, failures."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
import pytest

from hwaware_plugins.reporting import build_report, render_report
from hwaware_plugins.reporting._records import records_from_trials
from tests.reporting._study import DEVICES, make_study


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_study(tmp_path_factory.mktemp("study"), n_trials=30)


@pytest.fixture(scope="module")
def html(study: Any) -> str:
    return render_report(study)


def _section(html: str, anchor: str) -> str:
    start = html.index(f'<section id="{anchor}">')
    return html[start : html.index("</section>", start)]


def test_page_is_self_contained(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "@import" not in html and "url(" not in html


def test_one_timeline_row_per_device_used(html: str, study: Any) -> None:
    timeline = _section(html, "placement-timeline")
    rows = re.findall(r'<g class="device-row" data-device="([^"]+)"', timeline)
    used = {t.user_attrs["hwaware:device_id"] for t in study.trials}
    assert sorted(rows) == sorted(used)
    assert set(rows) <= {d.id for d in DEVICES}
    bars = re.findall(r'<rect class="trial trial-(\w+)"', timeline)
    assert len(bars) == len(study.trials)


def test_legend_has_one_entry_per_subspace(html: str, study: Any) -> None:
    subspaces = {r.subspace for r in records_from_trials(study.trials)}
    for anchor in ("placement-timeline", "loss-over-time"):
        entries = set(re.findall(r'class="legend-entry">([^<]+)<', _section(html, anchor)))
        assert subspaces <= entries


def test_loss_chart_and_usage_charts_are_present(html: str) -> None:
    assert '<polyline class="best-loss"' in _section(html, "loss-over-time")
    usage = _section(html, "trials-and-time-per-subspace-and-device-class")
    assert usage.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart bars"') == 2
    assert usage.count("<tr>") >= 2


def test_failures_are_counted_by_kind(html: str, study: Any) -> None:
    failures = _section(html, "failures-by-kind")
    failed = sum(t.state == optuna.trial.TrialState.FAIL for t in study.trials)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    if failed:
        assert f'<td>oom</td><td class="num">{failed}</td>' in failures
    if pruned:
        assert f'<td>pruned</td><td class="num">{pruned}</td>' in failures
    assert failed + pruned > 0  # the study is built to have some


def test_maximised_study_and_empty_study(tmp_path: Path) -> None:
    empty = optuna.create_study(direction="maximize", study_name="empty")
    page = render_report(empty)
    assert "No trials yet" in page and "maximised" in page
    study = optuna.create_study(direction="maximize", study_name="plain")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    page = render_report(study)
    assert "(not placed)" in page and '<polyline class="best-loss"' in page


def test_names_are_escaped() -> None:
    page = build_report([], title="<b>x</b> & y")
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt; &amp; y" in page
