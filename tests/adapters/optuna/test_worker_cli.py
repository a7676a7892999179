"""``hwaware worker``: bad input is one line on stderr and exit code 2."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hwaware_plugins.cli import main


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    optuna.create_study(study_name="known", storage=url)
    return url


@pytest.mark.parametrize(
    ("storage", "study", "objective", "message"),
    [
        ("nosuch://x", "known", "math:sqrt", "cannot open storage"),
        ("not-a-url", "known", "math:sqrt", "unknown storage URL"),
        (None, "missing", "math:sqrt", "no study named 'missing'"),
        (None, "known", "no_such_module_xyz:f", "cannot import objective module"),
        (None, "known", "math", "must be module:function"),
        (None, "known", "math:nothing_here", "is not a callable"),
        ("sqlite:////nonexistent/x.db", "known", "math:sqrt", "no file at /nonexistent/x.db"),
        ("journal:/nonexistent/j.log", "known", "math:sqrt", "no file at /nonexistent/j.log"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
    storage: str | None,
    study: str,
    objective: str,
    message: str,
) -> None:
    code = main(["worker", "--storage", storage or sqlite_url, "--study", study,
                 "--objective", objective, "--n-trials", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1


def test_trial_timeout_is_seconds_or_pairs_per_subspace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hwaware_optuna._cli_worker import parse_trial_timeout

    assert parse_trial_timeout("90") == 90.0
    assert parse_trial_timeout("model=mlp:600, *:60") == {"model=mlp": 600.0, "*": 60.0}
    with pytest.raises(SystemExit) as exit_info:
        main(["worker", "--storage", "sqlite:///x.db", "--study", "s", "--objective", "m:f",
              "--trial-timeout", "mlp=600"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "KEY:SECONDS pairs like 'model=mlp:600,*:60'" in err and err.count("\n") == 1


def test_a_bad_pruner_is_one_line_and_exit_2(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["worker", "--storage", sqlite_url, "--study", "known", "--objective",
                 "math:sqrt", "--n-trials", "1", "--pruner", "math:pi"])
    err = capsys.readouterr().err
    assert code == 2 and "--pruner 'math:pi' is not an optuna pruner" in err
