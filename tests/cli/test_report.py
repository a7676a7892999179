"""``hwaware report``: a study in SQLite or a journal file to one HTML file; clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from hwaware_plugins.cli import main


def _fill(storage: object, name: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=storage,  # type: ignore[arg-type]
                                sampler=optuna.samplers.RandomSampler(seed=0))  # fmt: skip
    study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.2) ** 2, n_trials=5)


def test_report_from_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    _fill(url, "s1")
    out = tmp_path / "r.html"
    assert main(["report", "--storage", url, "--study", "s1", "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "Study s1" in html and "<svg" in html and "5 trials" in html
    assert "wrote" in capsys.readouterr().out


def test_report_from_a_journal_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    _fill(JournalStorage(JournalFileBackend(str(path))), "s2")
    out = tmp_path / "r.html"
    assert main(["report", "--storage", str(path), "--study", "s2", "--out", str(out)]) == 0
    assert '<polyline class="best-loss"' in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ("missing.log", "neither a storage URL nor an existing file"),
        ("sqlite:///missing.db", "no SQLite file"),
        ("nosuchdialect://host/db", "cannot open storage"),
    ],
)
def test_bad_storage_is_one_line_and_creates_nothing(
    storage: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--storage", storage, "--study", "x", "--out", "r.html"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_unknown_study_lists_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    _fill(url, "present")
    assert main(["report", "--storage", url, "--study", "absent", "--out", "r.html"]) == 2
    err = capsys.readouterr().err
    assert "no study 'absent'" in err and "present" in err and err.count("\n") == 1


def test_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    _fill(url, "s")
    out = tmp_path / "no" / "such" / "dir" / "r.html"
    assert main(["report", "--storage", url, "--study", "s", "--out", str(out)]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_a_bare_sqlite_path_is_read_as_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "study.db"
    _fill(f"sqlite:///{path}", "bare")
    out = tmp_path / "r.html"
    assert main(["report", "--storage", str(path), "--study", "bare", "--out", str(out)]) == 0
    assert "Study bare" in out.read_text(encoding="utf-8")


def test_a_journal_prefix_reads_the_journal_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    _fill(JournalStorage(JournalFileBackend(str(path))), "j")
    out = tmp_path / "r.html"
    assert main(["report", "--storage", f"journal:{path}", "--study", "j", "--out", str(out)]) == 0


def test_redis_is_opened_as_optunas_redis_journal_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 1 refuses connections at once: the error must name Redis, not an SQL dialect.
    url = "redis://127.0.0.1:1/0"
    assert main(["report", "--storage", url, "--study", "s", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "cannot open Redis journal storage 'redis://127.0.0.1:1/0'" in err
    assert "sqlalchemy" not in err.lower() and err.count("\n") == 1


def test_worker_and_report_help_name_the_same_storages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    helps = {}
    for command in ("worker", "report"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        helps[command] = " ".join(capsys.readouterr().out.split())
    for scheme in ("sqlite:///", "postgresql://", "redis://", "journal:"):
        assert scheme in helps["worker"] and scheme in helps["report"], scheme


def test_headline_of_a_study_run_without_the_plugin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    _fill(url, "plain")  # a plain optuna study: no trial was placed by the adapter
    out = tmp_path / "r.html"
    assert main(["report", "--storage", url, "--study", "plain", "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "((not placed))" not in html
    assert re.search(r"#\d+ \(not placed\)", html)
