"""Storage-side bookkeeping of a supervisor: failing trials, retries, the trial budget.

Everything goes through optuna's public storage interface, so it works the same
on RDB (PostgreSQL), journal (file, Redis) and in-memory storages.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from hwaware_optuna import _attrs
from hwaware_optuna._worker_protocol import FAIL_REASON, RETRY

_log = logging.getLogger("hwaware_optuna")

_OWN_KEYS: tuple[str, ...] = (FAIL_REASON, *_attrs.STALE_KEYS)
"""User attributes of a failed trial a retry must not inherit."""


def is_retry(trial: FrozenTrial) -> bool:
    """True for a re-enqueued copy of a failed trial (optuna's ``retry_history`` format)."""
    return bool(trial.system_attrs.get("retry_history"))


def fail_trial(storage: Any, trial_id: int, reason: str) -> FrozenTrial | None:
    """Mark a running trial FAIL with ``hwaware:fail_reason`` = ``reason``.

    Returns the failed trial, or ``None`` when it had already finished (the
    worker told it, or another process failed it first: only one caller wins).
    Cost: three storage calls.
    """
    try:
        if storage.get_trial(trial_id).state.is_finished():
            return None
        with contextlib.suppress(UpdateFinishedTrialError):
            storage.set_trial_user_attr(trial_id, FAIL_REASON, reason)
        if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
            return None
    except UpdateFinishedTrialError:
        return None
    trial: FrozenTrial = storage.get_trial(trial_id)
    return trial


def enqueue_retry(study: optuna.Study, failed: FrozenTrial, max_retries: int) -> bool:
    """Queue a copy of ``failed`` (WAITING, same parameters) unless it used up ``max_retries``.

    The copy carries optuna's ``failed_trial``/``retry_history`` system
    attributes (as ``RetryHeartbeatStaleTrialCallback`` writes them) and the user
    attribute ``hwaware:retry`` (the retry count); its placement is made afresh
    by whichever worker takes it. Returns True when a copy was queued.
    """
    history = [*failed.system_attrs.get("retry_history", []), failed.number]
    if len(history) > max_retries:
        return False
    system_attrs = {
        **failed.system_attrs,
        "failed_trial": failed.system_attrs.get("failed_trial", failed.number),
        "retry_history": history,
    }
    user_attrs = {k: v for k, v in failed.user_attrs.items() if k not in _OWN_KEYS}
    user_attrs[RETRY] = len(history)
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            params=failed.params,
            distributions=failed.distributions,
            user_attrs=user_attrs,
            system_attrs=system_attrs,
        )
    )
    _log.info("trial %d failed (%s); queued retry %d of %d", failed.number,
              failed.user_attrs.get(FAIL_REASON), len(history), max_retries)
    return True


def budget_counts(storage: Any, study_id: int) -> tuple[int, int]:
    """``(used, waiting_retries)`` of a study's trial budget, read from the storage.

    ``used`` counts trials that were started (any state but WAITING) and are not
    retries; ``waiting_retries`` counts queued retries, which run on top of the
    budget. Cost: one read of every trial of the study.
    """
    used = 0
    waiting = 0
    for trial in storage.get_all_trials(study_id, deepcopy=False):
        if trial.state == TrialState.WAITING:
            waiting += is_retry(trial)
        elif not is_retry(trial):
            used += 1
    return used, waiting
