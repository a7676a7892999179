"""``hwaware bench scheduler``: JSON shape and exit codes on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwaware_plugins.cli import main
from tests.simulation.conftest import DEVICES, write_table


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    devices = tmp_path / "devices.toml"
    devices.write_text(DEVICES)
    return write_table(tmp_path / "table.csv", rows_per_subspace=20), devices


def test_json_report_shape(files: tuple[Path, Path], tmp_path: Path) -> None:
    table, devices = files
    out, svg = tmp_path / "out.json", tmp_path / "plot.svg"
    argv = ["-q", "bench", "scheduler", "--table", str(table), "--devices", str(devices)]
    argv += ["--workers", "12", "--seeds", "1", "--budget-hours", "0.001", "--json", str(out)]
    assert main([*argv, "--svg", str(svg)]) == 0
    report = json.loads(out.read_text())
    assert set(report["schedulers"]) == {"fcfs", "shadho", "hwaware"}
    for summary in report["schedulers"].values():
        assert {
            "models_per_hour",
            "hours_to_target",
            "best_loss",
            "reached_target_fraction",
        } <= set(summary)
    assert set(report["ratios"]) == {"hwaware_vs_fcfs", "hwaware_vs_shadho"}
    assert set(report["ratios"]["hwaware_vs_fcfs"]) == {
        "models_per_hour",
        "time_to_target",
        "best_loss",
    }
    assert report["settings"]["workers"] == 12
    assert svg.read_text().startswith("<svg") and "hwaware" in svg.read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seeds", "0"], "--seeds"),
        (["--budget-hours", "-1"], "--budget-hours"),
        (["--schedulers", "nope"], "unknown scheduler"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_input_exits_2(
    files: tuple[Path, Path], extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    table, devices = files
    argv = ["-q", "bench", "scheduler", "--table", str(table), "--devices", str(devices)]
    argv += ["--budget-hours", "0.01", "--schedulers", "fcfs", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_missing_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "scheduler", "--table", str(tmp_path / "no.csv"), "--devices", "x.toml"]
    assert main([*argv, "--budget-hours", "1"]) == 2
    assert "cannot read trial table" in capsys.readouterr().err
