"""Measured trials to replay: a CSV with one row per evaluated configuration.

Format: columns ``subspace``, ``family``, ``loss``, ``runtime_s`` and any
number of parameter columns (empty where a subspace does not use them).
``wall_s`` and ``index`` are kept out of the parameters. ``runtime_s`` is the
time on the reference machine (speed 1.0).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.scheduling._base import SubspaceInfo

REQUIRED_COLUMNS: tuple[str, ...] = ("subspace", "family", "loss", "runtime_s")
NON_PARAM_COLUMNS = frozenset({*REQUIRED_COLUMNS, "wall_s", "index", "seed", "state", "capped"})
LOG_SPAN = 100.0
"""A positive numeric column whose max/min is at least this is treated as log-scaled."""


@dataclass(frozen=True)
class SubspaceTrials:
    """The recorded trials of one subspace (arrays aligned by row)."""

    key: str
    family: str
    losses: np.ndarray
    runtimes: np.ndarray
    params: tuple[Mapping[str, Any], ...] = field(repr=False)

    def __len__(self) -> int:
        """Number of recorded rows."""
        return len(self.losses)


@dataclass(frozen=True)
class TrialTable:
    """Every subspace's recorded trials, in order of first appearance in the file."""

    subspaces: tuple[SubspaceTrials, ...]
    source: str = "<memory>"

    @property
    def all_losses(self) -> np.ndarray:
        """Every row's loss."""
        return np.concatenate([s.losses for s in self.subspaces])

    def loss_quantile(self, q: float) -> float:
        """The loss that a fraction ``q`` of the rows reach (``loss <= value``)."""
        return float(np.quantile(self.all_losses, q, method="inverted_cdf"))

    def subspace_infos(self, *, rule: str = "shadho") -> list[SubspaceInfo]:
        """SubspaceInfo per subspace, complexity from distributions inferred from the rows.

        Inference: a non-numeric column is a categorical of its values; an
        all-integer column an integer range; other numbers a float range,
        log-scaled when positive and spanning a factor of at least
        :data:`LOG_SPAN`. Cost: O(rows x params).
        """
        from hwaware_plugins.space import subspace_complexity

        return [
            SubspaceInfo(
                key=s.key,
                complexity=subspace_complexity(infer_distributions(s.params), rule=rule),
                family=s.family,
            )
            for s in self.subspaces
        ]


def infer_distributions(rows: Sequence[Mapping[str, Any]]) -> dict[str, object]:
    """The distributions a set of parameter rows looks drawn from (see ``subspace_infos``)."""
    from hwaware_plugins.space import Categorical, Float, Int

    names = sorted({k for r in rows for k in r})
    dists: dict[str, object] = {}
    for name in names:
        values = [r[name] for r in rows if name in r]
        if not all(isinstance(v, float) for v in values):
            dists[name] = Categorical(sorted({str(v) for v in values}))
            continue
        low, high = min(values), max(values)
        log = low > 0 and high / low >= LOG_SPAN
        if all(v.is_integer() for v in values):
            dists[name] = Int(int(low), int(high), log=log)
        else:
            dists[name] = Float(low, high, log=log)
    return dists


def _number(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: column {column!r} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: column {column!r} must be finite, got {text!r}")
    return value


def _param(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def load_table(path: str | os.PathLike[str]) -> TrialTable:
    """Read a trial table CSV.

    UTF-8, with or without a byte-order mark (a spreadsheet's "CSV UTF-8").

    :raises ConfigError: missing file, missing or repeated column, empty table,
        a non-finite loss, a runtime <= 0, a subspace with two families, or a
        file that is not UTF-8 CSV; the message names the file and line.
    """
    source = os.fspath(path)
    try:
        handle = open(source, newline="", encoding="utf-8-sig")  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(f"cannot read trial table {source}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        try:
            return _read_rows(reader, source)
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not UTF-8 text ({exc}); save it as UTF-8 CSV") \
                from None
        except csv.Error as exc:
            raise ConfigError(f"{source}:{reader.line_num}: not a CSV trial table ({exc})") \
                from None


def _read_rows(reader: csv.DictReader[str], source: str) -> TrialTable:
    """The table from a CSV reader (see :func:`load_table`)."""
    grouped: dict[str, tuple[str, list[float], list[float], list[dict[str, Any]]]] = {}
    columns = reader.fieldnames or []
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ConfigError(f"{source}: column(s) {', '.join(repeated)} appear more than once")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ConfigError(
            f"{source}: missing column(s) {', '.join(missing)}; a trial table needs "
            f"{', '.join(REQUIRED_COLUMNS)} plus parameter columns"
        )
    param_columns = [c for c in columns if c not in NON_PARAM_COLUMNS]
    for line, row in enumerate(reader, start=2):
        where = f"{source}:{line}"
        key, family = (row.get("subspace") or "").strip(), (row.get("family") or "").strip()
        if not key or not family:
            raise ConfigError(f"{where}: subspace and family must not be empty")
        loss = _number(row.get("loss") or "", "loss", where)
        runtime = _number(row.get("runtime_s") or "", "runtime_s", where)
        if runtime <= 0:
            raise ConfigError(f"{where}: runtime_s must be > 0, got {runtime}")
        entry = grouped.setdefault(key, (family, [], [], []))
        if entry[0] != family:
            raise ConfigError(
                f"{where}: subspace {key!r} has family {family!r} here but {entry[0]!r} before"
            )
        entry[1].append(loss)
        entry[2].append(runtime)
        entry[3].append({c: _param(row[c]) for c in param_columns if (row.get(c) or "") != ""})
    if not grouped:
        raise ConfigError(f"{source}: the trial table has no rows")
    return TrialTable(
        tuple(
            SubspaceTrials(key, fam, np.array(losses), np.array(runtimes), tuple(params))
            for key, (fam, losses, runtimes, params) in grouped.items()
        ),
        source=source,
    )
