"""The benchmark suite: the measured tables and device pools shipped as package data.

``hwaware bench scheduler --suite`` runs every table on every pool (DESIGN.md section 10).
The files live in ``hwaware_plugins/data/`` (byte-identical copies of ``benchmarks/data`` and
``benchmarks/devices``; see benchmarks/data/README.md for how each table was measured and
the pool files for their assumed speedups).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hwaware_plugins.errors import ConfigError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
"""Where the package data lives."""

SUITE_TABLES: Mapping[str, Path] = {
    "digits": DATA_DIR / "digits_cash.csv",
    "torch_digits": DATA_DIR / "torch_digits_cash.csv",
    "synthetic": DATA_DIR / "synthetic_cash.csv",
}
"""Measured trial tables of the suite: name -> packaged CSV (``load_table`` reads it)."""

SUITE_POOLS: Mapping[str, Path] = {
    "hetero-150": DATA_DIR / "hetero-150.toml",
    "gpu-heavy-150": DATA_DIR / "gpu-heavy-150.toml",
    "cpu-heavy-150": DATA_DIR / "cpu-heavy-150.toml",
    "two-class-150": DATA_DIR / "two-class-150.toml",
}
"""Declared device pools of the suite (150 slots each): name -> packaged TOML
(``load_devices`` reads it)."""


@dataclass(frozen=True)
class SuiteEntry:
    """One table x pool pair of the suite, with the files to load."""

    table: str
    pool: str
    table_path: Path
    pool_path: Path

    @property
    def label(self) -> str:
        """``table@pool``, the entry's name in printed tables and JSON."""
        return f"{self.table}@{self.pool}"


def _pick(kind: str, known: Mapping[str, Path], chosen: Iterable[str] | None) -> list[str]:
    names = list(known) if chosen is None else list(chosen)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown suite {kind} {', '.join(map(repr, unknown))}; choose from {', '.join(known)}"
        )
    if not names:
        raise ConfigError(f"no suite {kind} chosen; choose from {', '.join(known)}")
    return names


def suite_entries(
    *, tables: Iterable[str] | None = None, pools: Iterable[str] | None = None
) -> list[SuiteEntry]:
    """Every (table, pool) pair of the suite, table-major, optionally restricted by name.

    Costs nothing beyond building the list (files are not opened).

    :raises ConfigError: an unknown or empty selection; the message lists the known names.
    """
    table_names = _pick("table", SUITE_TABLES, tables)
    pool_names = _pick("pool", SUITE_POOLS, pools)
    return [
        SuiteEntry(t, p, SUITE_TABLES[t], SUITE_POOLS[p]) for t in table_names for p in pool_names
    ]
