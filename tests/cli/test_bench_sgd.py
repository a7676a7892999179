"""``hwaware bench sgd``: arguments, errors and the JSON it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwaware_plugins.cli import main
from hwaware_plugins.cli._bench_sgd import SGDBenchConfig
from hwaware_plugins.errors import ConfigError


def test_a_short_run_writes_one_entry_per_policy(tmp_path: Path) -> None:
    out = tmp_path / "sgd.json"
    code = main([
        "bench", "sgd", "--workers", "2", "--slowdowns", "1,3", "--policies", "sync,adaptive",
        "--epochs", "0.6", "--target-accuracy", "0.5", "--json", str(out),
    ])
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["policies"]) == {"sync", "adaptive"}
    for row in report["policies"].values():
        assert 0.0 <= row["final_accuracy"] <= 1.0
        assert row["time_to_target_s"] is None or row["time_to_target_s"] > 0
    # Sync waits for the slow worker at every step: it needs more virtual time per epoch.
    assert report["policies"]["adaptive"]["time_s"] < report["policies"]["sync"]["time_s"]


def test_inconsistent_arguments_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "sgd", "--workers", "3", "--slowdowns", "1,2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "one factor per worker" in err
    assert main(["bench", "sgd", "--policies", "sync,bogus"]) == 2
    assert "bogus" in capsys.readouterr().err
    assert main(["bench", "sgd", "--workers", "0"]) == 2
    assert "--workers must be at least 1, got 0" in capsys.readouterr().err


def test_config_validation_names_the_bad_setting() -> None:
    with pytest.raises(ConfigError, match="target-accuracy"):
        SGDBenchConfig(target_accuracy=1.5).validate()
