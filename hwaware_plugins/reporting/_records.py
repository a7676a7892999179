"""What a report knows about one trial, read from an Optuna trial without importing optuna.

:func:`records_from_trials` turns ``FrozenTrial`` objects (anything with
``number``, ``state.name``, ``values``, ``user_attrs``, ``datetime_start`` and
``datetime_complete``) into :class:`TrialRecord` rows with times in seconds
since the first trial started. The ``hwaware:*`` user attributes are those of
the one key table, :mod:`hwaware_plugins.attrs`, that the adapters write;
``hwaware:fail_reason`` is read when an objective or executor records why a
trial failed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hwaware_plugins.attrs import (
    DEVICE_CLASS,
    DEVICE_ID,
    FAIL_REASON,
    FREE,
    RUNTIME_S,
    SLOT_ID,
    SUBSPACE,
    TRIAL,
)

__all__ = ["FAIL_REASON", "FREE_LABEL", "UNPLACED", "TrialRecord", "records_from_trials"]

UNPLACED = "(not placed)"
FREE_LABEL = "* (exploring)"

_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "fail", "RUNNING": "running"}


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the report draws it.

    :param state: ``"complete"``, ``"pruned"``, ``"fail"``, ``"running"`` or ``"waiting"``.
    :param start_s: when it got its device, in seconds since the study's first trial
        started (``None``: never started).
    :param end_s: when it finished; ``None`` while running.
    :param loss: the first objective as a loss (negated when maximised), complete trials only.
    :param fail_kind: for failed and pruned trials, the kind shown in "failures by kind".
    """

    number: int
    state: str
    subspace: str
    device_id: str
    device_class: str
    slot_id: str | None
    start_s: float | None
    end_s: float | None
    loss: float | None
    fail_kind: str | None

    @property
    def duration_s(self) -> float:
        """Seconds it ran (0 when it has no start or no end)."""
        if self.start_s is None or self.end_s is None:
            return 0.0
        return max(0.0, self.end_s - self.start_s)


def _text(attrs: Mapping[str, Any], key: str) -> str | None:
    value = attrs.get(key)
    return value if isinstance(value, str) and value else None


def _loss(values: Any, maximize: bool) -> float | None:
    if not values:
        return None
    value = float(values[0])
    if not math.isfinite(value):
        return None
    return -value if maximize else value


def _fail_kind(state: str, attrs: Mapping[str, Any]) -> str | None:
    if state == "pruned":
        return "pruned"
    if state != "fail":
        return None
    return _text(attrs, FAIL_REASON) or "error (no reason recorded)"


def _seconds(moment: datetime | None, origin: datetime) -> float | None:
    return None if moment is None else (moment - origin).total_seconds()


def _device_interval(
    start: float | None, end: float | None, runtime: Any
) -> tuple[float | None, float | None]:
    """The span the trial held its device: the lease time ``hwaware:runtime_s`` (which
    excludes waiting for a free slot) ending at completion, else start to completion."""
    if not isinstance(runtime, int | float) or not math.isfinite(runtime) or runtime < 0:
        return start, end
    if end is not None:
        return (end - runtime if start is None else max(start, end - runtime)), end
    return start, None if start is None else start + float(runtime)


def records_from_trials(trials: Iterable[Any], *, maximize: bool = False) -> list[TrialRecord]:
    """Report rows for Optuna-style trials, sorted by trial number. Cost: O(trials).

    Trials without the adapter's placement attributes (or whose attributes were
    copied from another trial) are shown as ``"(not placed)"``.
    """
    items = list(trials)
    starts = [t.datetime_start for t in items if t.datetime_start is not None]
    origin = min(starts) if starts else datetime.now()
    records = []
    for trial in sorted(items, key=lambda t: int(t.number)):
        attrs: Mapping[str, Any] = trial.user_attrs
        state = _STATES.get(trial.state.name, "waiting")
        placed = attrs.get(TRIAL) == trial.number
        subspace = (_text(attrs, SUBSPACE) if placed else None) or UNPLACED
        end = _seconds(trial.datetime_complete, origin)
        start = _seconds(trial.datetime_start, origin)
        start, end = _device_interval(start, end, attrs.get(RUNTIME_S) if placed else None)
        records.append(
            TrialRecord(
                number=int(trial.number),
                state=state,
                subspace=FREE_LABEL if subspace == FREE else subspace,
                device_id=(_text(attrs, DEVICE_ID) if placed else None) or UNPLACED,
                device_class=(_text(attrs, DEVICE_CLASS) if placed else None) or UNPLACED,
                slot_id=_text(attrs, SLOT_ID) if placed else None,
                start_s=start,
                end_s=end,
                loss=_loss(trial.values, maximize) if state == "complete" else None,
                fail_kind=_fail_kind(state, attrs),
            )
        )
    return records
