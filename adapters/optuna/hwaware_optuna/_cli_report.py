"""hwaware report: write a self-contained HTML report of an Optuna study.

--storage takes the storages hwaware worker takes, plus plain paths:
  sqlite:///study.db, postgresql://..., mysql://...   an Optuna RDB storage
  redis://HOST:PORT                                  an Optuna journal in Redis
  journal:PATH                                       an Optuna journal file
  PATH                                               an SQLite file or a journal file
                                                     (hwaware demo writes a journal file)

This command comes from the optuna adapter (hwaware_optuna), which adds it to
the hwaware command line through the hwaware_add_commands hook.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path
from typing import Any

from hwaware_plugins.errors import ConfigError

SQLITE_MAGIC = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""

REDIS_SCHEMES: tuple[str, ...] = ("redis://", "rediss://", "unix://")
"""URL schemes opened as an Optuna journal in Redis (``JournalRedisBackend``)."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``report``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report (timeline, loss, usage, failures) of a study",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--storage", required=True,
        help="Optuna storage: sqlite:///FILE, postgresql://..., redis://HOST:PORT, or a journal "
             "or SQLite file path",
    )  # fmt: skip
    parser.add_argument("--study", required=True, help="study name")
    parser.add_argument("--out", required=True, help="HTML file to write")
    parser.set_defaults(handler=run)
    return parser


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] + ("..." if len(text) > 200 else "") or type(exc).__name__


def is_sqlite_file(path: str) -> bool:
    """True when ``path`` is a file starting with the SQLite header. Cost: one 16-byte read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def open_storage(storage: str) -> Any:
    """An Optuna storage for a URL or a file path; never creates one.

    A plain path is an SQLite file when it starts with the SQLite header (opened
    as ``sqlite:///PATH``), else an Optuna journal file; ``journal:PATH`` is a
    journal file; ``redis://`` (``rediss://``, ``unix://``) a journal in Redis,
    as ``hwaware worker`` opens it; any other URL an RDB storage.

    :raises ConfigError: Optuna missing, the file does not exist, or the URL
        cannot be opened (the message says what to write instead).
    """
    try:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
    except ModuleNotFoundError:
        raise ConfigError("hwaware report needs Optuna: pip install hwaware-optuna") from None
    if storage.startswith("journal:"):
        storage = storage.removeprefix("journal:")
        if "://" in storage:
            raise ConfigError(f"--storage journal:PATH takes a file path, got {storage!r}")
    elif storage.startswith(REDIS_SCHEMES):
        return _open_redis(storage)
    if "://" not in storage:
        if not os.path.isfile(storage):
            raise ConfigError(
                f"--storage {storage!r} is neither a storage URL nor an existing file; "
                "write sqlite:///PATH for an SQLite file or the path of a journal file"
            )
        if is_sqlite_file(storage):
            storage = f"sqlite:///{storage}"
        else:
            try:
                return JournalStorage(JournalFileBackend(storage))
            except Exception as exc:
                raise ConfigError(
                    f"cannot read journal file {storage}: {_one_line(exc)}; for an RDB "
                    "storage give its URL (sqlite:///PATH, postgresql://...)"
                ) from None
    if storage.startswith("sqlite:///"):
        path = storage[len("sqlite:///") :]
        if path and path != ":memory:" and not os.path.isfile(path):
            raise ConfigError(f"--storage {storage!r}: no SQLite file at {path}")
    try:
        return optuna.storages.RDBStorage(storage)
    except Exception as exc:
        raise ConfigError(f"cannot open storage {storage!r}: {_one_line(exc)}") from None


def _open_redis(url: str) -> Any:
    """An Optuna journal storage in Redis (``JournalRedisBackend``, Optuna's only Redis
    storage since Optuna 4 removed ``RedisStorage``)."""
    from optuna.storages.journal import JournalStorage

    try:
        from optuna.storages.journal import JournalRedisBackend
    except ImportError:
        raise ConfigError(
            f"--storage {url!r}: this Optuna has no JournalRedisBackend; use an RDB URL "
            "(sqlite:///PATH, postgresql://...) or a journal file"
        ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning
            return JournalStorage(JournalRedisBackend(url))
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"--storage {url!r} needs the {exc.name} package: pip install redis"
        ) from None
    except Exception as exc:
        raise ConfigError(
            f"cannot open Redis journal storage {url!r}: {_one_line(exc)}"
        ) from None


def load_study(storage: str, study_name: str) -> Any:
    """The Optuna study ``study_name`` in ``storage``.

    :raises ConfigError: bad storage (see :func:`open_storage`) or no such study
        (the message lists the studies there).
    """
    opened = open_storage(storage)  # says what to install when Optuna is missing
    import optuna

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
