"""``hwaware report``: a study in SQLite or a journal file to one HTML file; clear errors."""

from __future__ import annotations

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
