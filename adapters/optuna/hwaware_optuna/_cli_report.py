"""``hwaware report``: write a self-contained HTML report of an Optuna study.

``--storage`` is an Optuna RDB URL (``sqlite:///study.db``,
``postgresql://...``) or the path of an Optuna journal file (what ``hwaware
demo`` writes).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hwaware_plugins.errors import ConfigError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``report``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report (timeline, loss, usage, failures) of a study",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--storage", required=True, help="Optuna storage URL or journal file path")
    parser.add_argument("--study", required=True, help="study name")
    parser.add_argument("--out", required=True, help="HTML file to write")
    parser.set_defaults(handler=run)
    return parser


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] + ("..." if len(text) > 200 else "") or type(exc).__name__


def open_storage(storage: str) -> Any:
    """An Optuna storage for a URL or a journal file path; never creates one.

    :raises ConfigError: Optuna missing, the file does not exist, or the URL
        cannot be opened.
    """
    try:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
    except ModuleNotFoundError:
        raise ConfigError("hwaware report needs Optuna: pip install hwaware-optuna") from None
    if "://" not in storage:
        if not os.path.isfile(storage):
            raise ConfigError(
                f"--storage {storage!r} is neither a storage URL nor an existing journal file"
            )
        try:
            return JournalStorage(JournalFileBackend(storage))
        except Exception as exc:
            raise ConfigError(f"cannot read journal file {storage}: {_one_line(exc)}") from None
    if storage.startswith("sqlite:///"):
        path = storage[len("sqlite:///") :]
        if path and path != ":memory:" and not os.path.isfile(path):
            raise ConfigError(f"--storage {storage!r}: no SQLite file at {path}")
    try:
        return optuna.storages.RDBStorage(storage)
    except Exception as exc:
        raise ConfigError(f"cannot open storage {storage!r}: {_one_line(exc)}") from None


def load_study(storage: str, study_name: str) -> Any:
    """The Optuna study ``study_name`` in ``storage``.

    :raises ConfigError: bad storage (see :func:`open_storage`) or no such study
        (the message lists the studies there).
    """
    import optuna

    opened = open_storage(storage)
    try:
        names = optuna.study.get_all_study_names(opened)
    except Exception as exc:
        raise ConfigError(f"cannot read studies from {storage!r}: {_one_line(exc)}") from None
    if study_name not in names:
        known = ", ".join(sorted(names)[:10]) or "none"
        raise ConfigError(f"no study {study_name!r} in {storage}; studies there: {known}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=study_name, storage=opened)


def run(args: argparse.Namespace) -> int:
    """Load the study, render it, write the file."""
    from hwaware_plugins.reporting import render_report

    study = load_study(args.storage, args.study)
    html = render_report(study)
    out = Path(args.out)
    try:
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror}") from None
    print(f"wrote {out} ({len(study.trials)} trials, {len(html) // 1024} KiB)")
    return 0
