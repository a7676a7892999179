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
