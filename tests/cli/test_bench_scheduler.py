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
    argv += ["--workers", "12", "--seeds", "2", "--budget-hours", "0.001", "--json", str(out)]
    argv += ["--schedulers", "random,fcfs,tpe,oracle,hwaware"]
    assert main([*argv, "--svg", str(svg)]) == 0
    report = json.loads(out.read_text())
    assert set(report["schedulers"]) == {"random", "fcfs", "tpe", "oracle", "hwaware"}
    for summary in report["schedulers"].values():
        assert {
            "models_per_hour",
            "hours_to_target",
            "best_loss",
            "reached_target_fraction",
            "targets",
            "regret_auc",
        } <= set(summary)
        assert set(summary["targets"]) == {"q2", "q0.5", "best"}
    # regret is normalised to random's median; fcfs is the same scheduler under its old name
    assert report["schedulers"]["random"]["regret_auc"] == pytest.approx(1.0)
    assert report["schedulers"]["fcfs"]["targets"] == report["schedulers"]["random"]["targets"]
    assert set(report["ratios"]) == {f"hwaware_vs_{n}" for n in ("random", "fcfs", "tpe", "oracle")}
    ratio = report["ratios"]["hwaware_vs_tpe"]
    assert {"models_per_hour", "time_to_target", "best_loss"} <= set(ratio)
    assert set(ratio["targets"]) == {"q2", "q0.5", "best"}
    product = 1.0
    for value in ratio["targets"].values():
        product *= value
    assert ratio["time_to_target_gmean"] == pytest.approx(product ** (1 / 3))
    assert ratio["regret_auc"] == pytest.approx(
        report["schedulers"]["tpe"]["regret_auc"] / report["schedulers"]["hwaware"]["regret_auc"]
    )
    assert set(report["limit"]) == {f"oracle_vs_{n}" for n in ("random", "fcfs", "tpe")}
    assert report["settings"]["workers"] == 12
    assert svg.read_text().startswith("<svg") and "oracle" in svg.read_text()


def test_suite_runs_every_entry(
    files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _suite = pytest.importorskip("hwaware_plugins.simulation._suite")
    table, devices = files
    monkeypatch.setattr(_suite, "SUITE_TABLES", {"tiny": table})
    monkeypatch.setattr(_suite, "SUITE_POOLS", {"mixed": devices, "same": devices})
    out, plots = tmp_path / "suite.json", tmp_path / "plots"
    argv = ["-q", "bench", "scheduler", "--suite", "--seeds", "1", "--workers", "8"]
    argv += ["--schedulers", "random,oracle,hwaware", "--json", str(out), "--svg", str(plots)]
    assert main(argv) == 0
    reports = json.loads(out.read_text())
    assert set(reports) == {"tiny@mixed", "tiny@same"}
    verdict = reports["tiny@mixed"]["verdicts"]["random"]
    assert set(verdict) == {"hwaware", "oracle", "bound", "worst_target", "regret", "ok"}
    printed = capsys.readouterr().out
    assert "tiny@mixed" in printed and "tiny@same" in printed and "holds on" in printed
    assert sorted(p.name for p in plots.iterdir()) == ["tiny@mixed.svg", "tiny@same.svg"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seeds", "0"], "--seeds"),
        (["--budget-hours", "-1"], "--budget-hours"),
        (["--schedulers", "nope"], "unknown scheduler"),
        (["--workers", "0"], "--workers"),
        (["--targets", "q2"], "target 'q2' not understood"),
        (["--jobs", "0"], "--jobs"),
        (["--suite"], "either --suite or --table"),
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
    assert main(["bench", "scheduler", "--table", str(tmp_path / "no.csv")]) == 2
    assert "give --table and --devices" in capsys.readouterr().err


def test_one_table_gets_the_rule_and_the_oracle_check_too(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table, devices = files
    out = tmp_path / "out.json"
    argv = ["-q", "bench", "scheduler", "--table", str(table), "--devices", str(devices)]
    argv += ["--workers", "8", "--seeds", "1", "--budget-hours", "0.001", "--json", str(out)]
    assert main([*argv, "--schedulers", "random,oracle,hwaware"]) == 0
    report = json.loads(out.read_text())
    assert set(report["verdicts"]) == {"random"}
    assert isinstance(report["limit_violations"], list)
    assert report["settings"]["devices"] == str(devices)
    assert report["settings"]["schedulers"] == ["random", "oracle", "hwaware"]
    printed = capsys.readouterr().out
    assert "holds on" in printed and "oracle is the limit" in printed


def test_a_run_that_ends_no_trial_is_reported_not_a_traceback(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table, devices = files
    out = tmp_path / "out.json"
    argv = ["-q", "bench", "scheduler", "--table", str(table), "--devices", str(devices)]
    argv += ["--seeds", "1", "--budget-hours", "1e-9", "--schedulers", "random,hwaware"]
    assert main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())  # strict JSON: no NaN
    assert report["schedulers"]["random"]["best_loss"] is None
    assert report["ratios"]["hwaware_vs_random"]["models_per_hour"] is None
    assert "(not reached)" in capsys.readouterr().out


@pytest.mark.parametrize("suite", [False, True])
def test_an_output_that_cannot_be_written_is_refused_before_simulating(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], suite: bool
) -> None:
    table, devices = files
    argv = ["-q", "bench", "scheduler", "--seeds", "1", "--schedulers", "random"]
    argv += ["--suite"] if suite else ["--table", str(table), "--devices", str(devices)]
    assert main([*argv, "--json", str(tmp_path / "no" / "such" / "out.json")]) == 2
    assert "--json" in capsys.readouterr().err
    assert main([*argv, "--svg", str(table) + ("" if suite else "/x.svg")]) == 2
    assert "--svg" in capsys.readouterr().err


def test_a_suite_without_hwaware_prints_each_entrys_figures(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _suite = pytest.importorskip("hwaware_plugins.simulation._suite")
    table, devices = files
    monkeypatch.setattr(_suite, "SUITE_TABLES", {"tiny": table})
    monkeypatch.setattr(_suite, "SUITE_POOLS", {"mixed": devices})
    argv = ["-q", "bench", "scheduler", "--suite", "--seeds", "1", "--workers", "8"]
    assert main([*argv, "--schedulers", "random,shadho"]) == 0
    printed = capsys.readouterr().out
    assert "tiny@mixed:" in printed and "shadho" in printed
    assert "no acceptance verdict" in printed


def test_a_table_of_equal_losses_prints_no_ratio_for_the_regret(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every scheduler's regret is 0 there: the ratio was printed as "-x".
    _, devices = files
    table = tmp_path / "equal.csv"
    rows = [f"{key},{family},0.5,{runtime}" for key, family in (("a", "svm"), ("b", "mlp"))
            for runtime in (1.0, 2.0, 1.5)]
    table.write_text("subspace,family,loss,runtime_s\n" + "\n".join(rows) + "\n")
    argv = ["bench", "scheduler", "--table", str(table), "--devices", str(devices),
            "--workers", "4", "--seeds", "1", "--budget-hours", "0.001"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "-x" not in out and "n/a" in out
