"""The trial user attributes the adapter writes, and how it reads them back.

The keys come from the core's one table, :mod:`hwaware_plugins.attrs`, and are
re-exported here for the adapter's modules.

Everything the scheduler needs lives in the study's own storage, as user
attributes of each trial (shown by optuna-dashboard), so any process can
rebuild the scheduler's view:

- at placement: ``hwaware:trial`` (the trial number, which marks the other keys
  as this trial's own and not copies, e.g. by ``RetryFailedTrialCallback``),
  ``hwaware:device_id``, ``hwaware:device_class``, ``hwaware:device_kind``,
  ``hwaware:uuid``, ``hwaware:host``, ``hwaware:slot_id`` and
  ``hwaware:subspace`` (``"*"`` while trials explore freely);
- at the end: ``hwaware:runtime_s`` (seconds the lease was held);
- by :class:`~hwaware_optuna.CostAwarePruner`, at each report: ``hwaware:step_s``
  (seconds per step, timed between reports);
- by the objective, optionally: ``hwaware:peak_memory_mb`` (see
  :func:`report_peak_memory`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hwaware_plugins.attrs import (
    DEVICE_CLASS,
    DEVICE_ID,
    DEVICE_KIND,
    FREE,
    HOST,
    PEAK_MEMORY_MB,
    PREFIX,
    RUNTIME_S,
    SLOT_ID,
    STEP_S,
    SUBSPACE,
    TRIAL,
    UUID,
)
from hwaware_plugins.errors import ConfigError

__all__ = [
    "DEVICE_CLASS", "DEVICE_ID", "DEVICE_KIND", "FREE", "HOST", "PEAK_MEMORY_MB", "PREFIX",
    "RUNTIME_S", "SLOT_ID", "STALE_KEYS", "STEP_S", "SUBSPACE", "TRIAL", "UUID", "Outcome",
    "device_class_of", "first_objective_loss", "is_placed", "outcome_of", "report_peak_memory",
    "runtime_of",
]  # fmt: skip

STALE_KEYS: tuple[str, ...] = (RUNTIME_S, PEAK_MEMORY_MB, STEP_S)
"""Keys a copied trial may carry from its original; a new placement resets them."""

_STATES: dict[TrialState, str] = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "fail",
}


def report_peak_memory(trial: optuna.trial.BaseTrial, memory_mb: float) -> None:
    """Record the trial's peak device memory (MiB) for memory-aware packing.

    Call it from the objective, e.g. with
    ``torch.cuda.max_memory_allocated() / 2**20``. Cost: one storage write.

    :raises ConfigError: if ``memory_mb`` is not a finite number >= 0.
    """
    value = float(memory_mb)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"peak memory must be a finite number of MiB >= 0, got {memory_mb!r}")
    trial.set_user_attr(PEAK_MEMORY_MB, value)


def is_placed(trial: FrozenTrial) -> bool:
    """True when the trial's ``hwaware:*`` placement attributes are its own."""
    return trial.user_attrs.get(TRIAL) == trial.number


def device_class_of(trial: FrozenTrial) -> str | None:
    """The device class the trial ran on, or ``None`` if it was not placed by the adapter."""
    if not is_placed(trial):
        return None
    value = trial.user_attrs.get(DEVICE_CLASS)
    return value if isinstance(value, str) else None


def first_objective_loss(
    values: Sequence[float] | None, directions: Sequence[StudyDirection]
) -> float | None:
    """The first objective as a loss (lower is better): negated when it is maximised.

    Multi-objective studies are scheduled on their first objective only.
    """
    if not values:
        return None
    value = float(values[0])
    if not math.isfinite(value):
        return None
    return -value if directions[0] == StudyDirection.MAXIMIZE else value


def runtime_of(trial: FrozenTrial) -> float | None:
    """Seconds the trial ran: its own ``hwaware:runtime_s``, else its start/complete times."""
    if is_placed(trial):
        value = trial.user_attrs.get(RUNTIME_S)
        if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
            return float(value)
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        return max(0.0, (trial.datetime_complete - trial.datetime_start).total_seconds())
    return None


@dataclass(frozen=True)
class Outcome:
    """One finished trial as the scheduler's history sees it.

    :param params: the trial's parameters (not copied: never mutate).
    :param state: ``"complete"``, ``"pruned"`` or ``"fail"``.
    :param device_class: where it ran, ``None`` when it was not placed by the adapter.
    :param placed_subspace: the subspace key it was placed in (``"*"`` when free).
    """

    trial_id: int
    params: Mapping[str, Any]
    distributions: Mapping[str, Any]
    state: str
    device_class: str | None
    placed_subspace: str | None
    runtime_s: float
    loss: float | None
    peak_memory_mb: float | None
    finished_at: float | None


def outcome_of(
    trial: FrozenTrial,
    directions: Sequence[StudyDirection],
    *,
    state: TrialState | None = None,
    values: Sequence[float] | None = None,
    runtime_s: float | None = None,
) -> Outcome | None:
    """The :class:`Outcome` of a finished trial, or ``None`` if it is not finished.

    ``state``, ``values`` and ``runtime_s`` override what the stored trial says
    (the sampler knows them before the storage does). Cost: O(1).
    """
    state = trial.state if state is None else state
    name = _STATES.get(state)
    if name is None:
        return None
    if values is None and state == TrialState.COMPLETE:
        values = trial.values
    placed = is_placed(trial)
    runtime = runtime_s if runtime_s is not None else runtime_of(trial)
    peak = trial.user_attrs.get(PEAK_MEMORY_MB)
    subspace = trial.user_attrs.get(SUBSPACE) if placed else None
    finished = trial.datetime_complete.timestamp() if trial.datetime_complete else None
    return Outcome(
        trial_id=trial._trial_id,
        params=trial.params,
        distributions=trial.distributions,
        state=name,
        device_class=device_class_of(trial),
        placed_subspace=subspace if isinstance(subspace, str) else None,
        runtime_s=0.0 if runtime is None else runtime,
        loss=first_objective_loss(values, directions) if name == "complete" else None,
        peak_memory_mb=float(peak) if isinstance(peak, int | float) else None,
        finished_at=finished,
    )
