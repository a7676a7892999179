"""``hwaware demo``: study, summary, report and simulation, on a tiny plan."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import hwaware_plugins
from hwaware_plugins.cli import main
from hwaware_plugins.cli._demo_cash import data_file

TINY = ["--quick", "--trials", "4", "--seeds", "1", "--budget-hours", "0.00003"]


def test_quick_demo_writes_report_and_prints_summary_and_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--out", str(out), *TINY]) == 0
    text = capsys.readouterr().out
    assert "4 trials of digits CASH" in text
    assert "subspace" in text and "best loss" in text and "devices" in text
    for name in ("random", "tpe", "oracle (limit)", "hwaware"):
        assert f"\n{name} " in text
    assert "hwaware vs tpe: sooner to quality" in text
    assert "hwaware vs random: sooner to quality" in text
    assert "limit: oracle vs tpe sooner to quality" in text
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Study hwaware-demo" in html and 'class="device-row"' in html
    assert (out / "journal.log").is_file()
    assert (out / "scheduler_best_loss.svg").read_text(encoding="utf-8").startswith("<svg")


def test_running_twice_replaces_the_demo_study(tmp_path: Path) -> None:
    from hwaware_optuna._cli_report import load_study

    args = ["-q", "demo", "--out", str(tmp_path), *TINY]
    assert main(args) == 0
    assert main(args) == 0
    study = load_study(str(tmp_path / "journal.log"), "hwaware-demo")
    assert len(study.trials) == 4


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--trials", "0", "--trials must be >= 1"), ("--seeds", "0", "--seeds must be >= 1"),
     ("--budget-hours", "-1", "--budget-hours must be > 0")],
)  # fmt: skip
def test_bad_numbers_are_one_line_errors(
    flag: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", str(tmp_path), flag, value]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_without_optuna_it_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main(["demo", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "pip install hwaware-optuna" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_shipped_data_matches_the_repository_copy() -> None:
    package = Path(hwaware_plugins.__file__).parent
    for subdir, name in (("data", "digits_cash.csv"), ("devices", "hetero-150.toml")):
        shipped = package / "data" / name
        assert shipped.read_bytes() == data_file(subdir, name).read_bytes()
