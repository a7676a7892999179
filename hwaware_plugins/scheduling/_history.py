"""The trial history schedulers read: per (subspace, device class) statistics.

Every finished trial is one record. :class:`History` keeps running statistics
so that the queries schedulers make on each decision cost O(1) or O(log n),
never O(history): counts, runtime sums, sorted runtimes and losses, failures
by kind, peak memory, and the numeric parameters of each result (for
schedulers that model the loss surface, such as ``shadho``).

A history can always be rebuilt from its records (:meth:`History.from_records`),
which is how any process on any node reconstructs the scheduler's view from the
framework's own storage.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hwaware_plugins.errors import ConfigError

TRIAL_STATES: tuple[str, ...] = ("complete", "fail", "pruned", "timeout", "oom")
"""States a record may carry; every state but ``complete`` counts as a failure kind."""

_RECORD_KEYS = frozenset(
    {
        "subspace",
        "device_class",
        "runtime_s",
        "loss",
        "state",
        "peak_memory_mb",
        "finished_at",
        "params",
    }
)


@dataclass
class _Cell:
    """Running statistics of one (subspace, device class) pair."""

    count: int = 0
    complete: int = 0
    runtime_sum: float = 0.0
    runtimes: list[float] = field(default_factory=list)  # sorted
    failures: Counter[str] = field(default_factory=Counter)
    peak_memory_mb: float | None = None


@dataclass
class _Subspace:
    """Running statistics of one subspace over every device class."""

    count: int = 0
    losses: list[float] = field(default_factory=list)  # sorted, complete trials only
    params: list[dict[str, float]] = field(default_factory=list)
    param_losses: list[float] = field(default_factory=list)


class History:
    """Finished trials, indexed by subspace and device class.

    Thread-safety: every method takes an internal lock, so one history can be
    shared by the threads of a study; readers see a consistent state.

    Cost: :meth:`record` is O(log n) plus an O(n) memory move of sorted lists
    (microseconds at 10,000 trials); every query is O(1) or O(log n) except
    :meth:`records`, :meth:`params_and_losses` and the ``*_by`` dictionaries,
    which are linear in what they return.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._cells: dict[tuple[str, str], _Cell] = {}
        self._subspaces: dict[str, _Subspace] = {}
        self._losses: list[float] = []  # every complete loss, sorted
        self._records: list[dict[str, Any]] = []
        self._latest: float | None = None

    # -- writing ---------------------------------------------------------------------------

    def record(
        self,
        subspace: str,
        device_class: str,
        *,
        runtime_s: float,
        loss: float | None = None,
        state: str = "complete",
        peak_memory_mb: float | None = None,
        finished_at: float | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """Add one finished trial.

        :param runtime_s: device time the trial used (failures included).
        :param loss: the objective value; kept only for ``complete`` trials.
        :param state: one of :data:`TRIAL_STATES`.
        :param params: the trial's parameters; only finite numeric values are
            kept (for schedulers that model the loss surface).
        :raises ConfigError: on an unknown state, a negative or non-finite
            runtime, or a non-finite loss of a complete trial.
        """
        if state not in TRIAL_STATES:
            raise ConfigError(
                f"unknown trial state {state!r}; use one of {', '.join(TRIAL_STATES)}"
            )
        runtime = float(runtime_s)
        if not math.isfinite(runtime) or runtime < 0:
            raise ConfigError(f"runtime_s must be a finite number >= 0, got {runtime_s!r}")
        value = None if loss is None else float(loss)
        if state == "complete" and value is not None and not math.isfinite(value):
            raise ConfigError(f"the loss of a complete trial must be finite, got {loss!r}")
        numeric = _numeric_params(params)
        with self._lock:
            self._records.append(
                {
                    "subspace": subspace,
                    "device_class": device_class,
                    "runtime_s": runtime,
                    "loss": value,
                    "state": state,
                    "peak_memory_mb": peak_memory_mb,
                    "finished_at": finished_at,
                    "params": numeric,
                }
            )
            if finished_at is not None and (self._latest is None or finished_at > self._latest):
                self._latest = float(finished_at)
            cell = self._cells.setdefault((subspace, device_class), _Cell())
            sub = self._subspaces.setdefault(subspace, _Subspace())
            cell.count += 1
            sub.count += 1
            cell.runtime_sum += runtime
            bisect.insort(cell.runtimes, runtime)
            if peak_memory_mb is not None:
                peak = float(peak_memory_mb)
                cell.peak_memory_mb = (
                    peak if cell.peak_memory_mb is None else max(cell.peak_memory_mb, peak)
                )
            if state != "complete":
                cell.failures[state] += 1
                return
            cell.complete += 1
            if value is not None:
                bisect.insort(sub.losses, value)
                bisect.insort(self._losses, value)
                if numeric:
                    sub.params.append(numeric)
                    sub.param_losses.append(value)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> History:
        """Rebuild a history from record dicts (the shape :meth:`records` returns).

        Each dict needs ``subspace``, ``device_class`` and ``runtime_s``; the
        other keys of :meth:`record` are optional.

        :raises ConfigError: on a missing or unknown key (naming the record).
        """
        history = cls()
        for number, rec in enumerate(records):
            missing = {"subspace", "device_class", "runtime_s"} - rec.keys()
            if missing:
                raise ConfigError(
                    f"history record {number} lacks {', '.join(sorted(missing))}; "
                    "each record needs subspace, device_class and runtime_s"
                )
            unknown = rec.keys() - _RECORD_KEYS
            if unknown:
                raise ConfigError(
                    f"history record {number} has unknown keys {', '.join(sorted(unknown))}; "
                    f"allowed: {', '.join(sorted(_RECORD_KEYS))}"
                )
            extra = {k: v for k, v in rec.items() if k not in ("subspace", "device_class")}
            history.record(str(rec["subspace"]), str(rec["device_class"]), **extra)
        return history

    # -- reading ---------------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        """Copies of every record, in the order they were added."""
        with self._lock:
            return [dict(r, params=dict(r["params"])) for r in self._records]

    def records_since(self, start: int) -> list[dict[str, Any]]:
        """Copies of the records added after the first ``start`` ones, in order.

        For schedulers that mirror the history incrementally (remember
        ``len(history)``, ask for what came since). Cost: O(returned records).
        """
        with self._lock:
            return [dict(r, params=dict(r["params"])) for r in self._records[max(0, start) :]]

    def __len__(self) -> int:
        """Number of records (every state)."""
        with self._lock:
            return len(self._records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Iterate over copies of the records."""
        return iter(self.records())

    @property
    def latest_finished_at(self) -> float | None:
        """The latest ``finished_at`` recorded (the clock of the last result), or ``None``."""
        with self._lock:
            return self._latest

    @property
    def n_complete(self) -> int:
        """Number of complete trials that reported a loss."""
        with self._lock:
            return len(self._losses)

    def subspaces(self) -> list[str]:
        """Subspaces seen so far, in order of first record."""
        with self._lock:
            return list(self._subspaces)

    def device_classes(self) -> list[str]:
        """Device classes seen so far, in order of first record."""
        with self._lock:
            return list(dict.fromkeys(c for _, c in self._cells))

    def count(
        self,
        subspace: str | None = None,
        device_class: str | None = None,
        *,
        complete: bool = False,
    ) -> int:
        """Trials of a subspace and/or device class (``None``: all); ``complete`` only if asked.

        Cost: O(1) for a subspace or a (subspace, class) pair, O(cells) otherwise.
        """
        with self._lock:
            if subspace is not None and device_class is not None:
                cell = self._cells.get((subspace, device_class))
                return 0 if cell is None else cell.complete if complete else cell.count
            if subspace is not None and not complete:
                sub = self._subspaces.get(subspace)
                return 0 if sub is None else sub.count
            return sum(
                c.complete if complete else c.count
                for (s, d), c in self._cells.items()
                if (subspace is None or s == subspace)
                and (device_class is None or d == device_class)
            )

    def mean_runtime(self, subspace: str, device_class: str) -> float | None:
        """Mean runtime of the pair over every state, or ``None`` before its first trial."""
        with self._lock:
            cell = self._cells.get((subspace, device_class))
            return None if cell is None else cell.runtime_sum / cell.count

    def median_runtime(self, subspace: str, device_class: str) -> float | None:
        """Median runtime of the pair over every state, or ``None`` before its first trial."""
        with self._lock:
            cell = self._cells.get((subspace, device_class))
            if cell is None:
                return None
            values, n = cell.runtimes, len(cell.runtimes)
            mid = n // 2
            return values[mid] if n % 2 else 0.5 * (values[mid - 1] + values[mid])

    def runtime_sum(self, subspace: str, device_class: str) -> float:
        """Total device seconds the pair used (0.0 before its first trial)."""
        with self._lock:
            cell = self._cells.get((subspace, device_class))
            return 0.0 if cell is None else cell.runtime_sum

    def failures(self, subspace: str, device_class: str) -> dict[str, int]:
        """Failed trials of the pair by kind (``fail``, ``oom``, ``timeout``, ``pruned``)."""
        with self._lock:
            cell = self._cells.get((subspace, device_class))
            return {} if cell is None else dict(cell.failures)

    def peak_memory_mb(self, subspace: str, device_class: str) -> float | None:
        """The largest peak memory reported for the pair, or ``None``."""
        with self._lock:
            cell = self._cells.get((subspace, device_class))
            return None if cell is None else cell.peak_memory_mb

    def best_loss(self, subspace: str | None = None) -> float | None:
        """The lowest loss of a subspace (``None``: of all), or ``None`` before any."""
        with self._lock:
            if subspace is None:
                return self._losses[0] if self._losses else None
            sub = self._subspaces.get(subspace)
            return sub.losses[0] if sub is not None and sub.losses else None

    def best_losses(self) -> dict[str, float]:
        """The lowest loss of every subspace that has one."""
        with self._lock:
            return {k: s.losses[0] for k, s in self._subspaces.items() if s.losses}

    def kth_best_loss(self, k: int) -> float | None:
        """The k-th lowest loss over all subspaces (1-based, clipped), or ``None``."""
        with self._lock:
            if not self._losses:
                return None
            return self._losses[min(max(k, 1), len(self._losses)) - 1]

    def sorted_losses(self, subspace: str | None = None) -> list[float]:
        """The complete trials' losses of a subspace (``None``: of all), ascending. O(n) copy."""
        with self._lock:
            if subspace is None:
                return list(self._losses)
            sub = self._subspaces.get(subspace)
            return [] if sub is None else list(sub.losses)

    def count_losses_at_most(self, subspace: str, threshold: float) -> int:
        """How many complete trials of ``subspace`` reached ``loss <= threshold`` (O(log n))."""
        with self._lock:
            sub = self._subspaces.get(subspace)
            return 0 if sub is None else bisect.bisect_right(sub.losses, threshold)

    def params_and_losses(
        self, subspace: str, *, last: int | None = None
    ) -> tuple[list[dict[str, float]], list[float]]:
        """The numeric parameters and losses of the subspace's complete trials (``last`` only)."""
        with self._lock:
            sub = self._subspaces.get(subspace)
            if sub is None:
                return [], []
            start = 0 if last is None else max(0, len(sub.params) - last)
            return [dict(p) for p in sub.params[start:]], list(sub.param_losses[start:])


def _numeric_params(params: Mapping[str, Any] | None) -> dict[str, float]:
    if not params:
        return {}
    kept: dict[str, float] = {}
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        number = float(value)
        if math.isfinite(number):
            kept[str(name)] = number
    return kept
