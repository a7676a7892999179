"""Storage-side bookkeeping of ``optimize``/``hwaware worker``: trials, owners, failures, retries.

The coordinator makes each trial RUNNING itself (a new one, or a queued one it
claims) stamped with its own process as owner (:func:`worker_stamp`), before it
hands the trial id to the executor; the worker process that takes the trial
re-stamps it with its own pid. So a trial is never RUNNING without a known
owner: a worker that dies at any point has its trial failed, and on restart the
trials whose owner died with an earlier run are found by pid
(:func:`fail_trials_of_dead_workers`). Everything goes through optuna's public
storage interface, so it works the same on RDB (PostgreSQL), journal (file,
Redis) and in-memory storages.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from hwaware_optuna import _attrs
from hwaware_plugins.attrs import (
    FAIL_REASON,
    NODE,
    OBJECTIVE_STARTED,
    OOM_ACTION,
    RETRY,
    WORKER_PID,
    WORKER_STARTED,
)
from hwaware_plugins.attrs import MEMORY_NEED_MB as MEMORY_NEED
from hwaware_plugins.hardware._leasefile import (
    process_create_time,
    process_start_ticks,
    same_process_alive,
)

_log = logging.getLogger("hwaware_optuna")

__all__ = [
    "FAIL_REASON", "MEMORY_NEED", "NODE", "OBJECTIVE_STARTED", "OOM_ACTION", "RETRY",
    "WORKER_PID", "WORKER_STARTED",
]  # re-exported keys of hwaware_plugins.attrs, the one table

_OWN_KEYS: tuple[str, ...] = (
    FAIL_REASON, OOM_ACTION, WORKER_PID, WORKER_STARTED, OBJECTIVE_STARTED, *_attrs.STALE_KEYS
)
"""User attributes of a failed trial a retry must not inherit."""


def worker_stamp(pid: int, node: str) -> dict[str, Any]:
    """The user attributes naming the process that owns a trial: node, pid, start.

    Cost: two small reads under ``/proc``.
    """
    return {NODE: node, WORKER_PID: pid,
            WORKER_STARTED: [process_create_time(pid), process_start_ticks(pid)]}


def create_running(storage: Any, study_id: int, stamp: dict[str, Any]) -> FrozenTrial:
    """A new RUNNING trial carrying ``stamp`` from its first write. Cost: two storage calls."""
    template = optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs=stamp)
    trial: FrozenTrial = storage.get_trial(
        storage.create_new_trial(study_id, template_trial=template)
    )
    return trial


def claim_waiting(
    storage: Any, study_id: int, *, accept: Callable[[FrozenTrial], bool],
    stamp: dict[str, Any],
) -> FrozenTrial | None:
    """Make the first queued (WAITING) trial that ``accept`` takes RUNNING, stamped; or ``None``.

    Claiming is atomic in the storage (as optuna pops its queue): when another
    process claims a trial first, the next one is tried. Cost: one read of the
    queued trials, then a few storage calls.
    """
    for trial in waiting_trials(storage, study_id):
        if not accept(trial):
            continue
        try:
            if not storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING):
                continue
        except UpdateFinishedTrialError:
            continue
        for key, value in stamp.items():
            storage.set_trial_user_attr(trial._trial_id, key, value)
        claimed: FrozenTrial = storage.get_trial(trial._trial_id)
        return claimed
    return None


def waiting_trials(storage: Any, study_id: int) -> list[FrozenTrial]:
    """The study's queued (WAITING) trials, oldest first. Cost: one storage read."""
    trials: list[FrozenTrial] = storage.get_all_trials(
        study_id, deepcopy=False, states=(TrialState.WAITING,)
    )
    return trials


def heartbeat_interval(storage: Any) -> float | None:
    """The storage's heartbeat interval in seconds, or ``None`` when it keeps no heartbeat."""
    getter = getattr(storage, "get_heartbeat_interval", None)
    interval = getter() if callable(getter) else None
    return float(interval) if isinstance(interval, int | float) and interval > 0 else None


def single_node_storage(storage: Any) -> bool:
    """True for storages only one node writes: a journal file, or SQLite."""
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    if isinstance(storage, JournalStorage):
        return isinstance(getattr(storage, "_backend", None), JournalFileBackend)
    rdb = storage if isinstance(storage, RDBStorage) else getattr(storage, "_backend", None)
    return isinstance(rdb, RDBStorage) and str(rdb.url).startswith("sqlite")


def _worker_gone(trial: FrozenTrial) -> int | None:
    """The recorded worker pid of ``trial`` when that process is gone, else ``None``."""
    pid = trial.user_attrs.get(WORKER_PID)
    started = trial.user_attrs.get(WORKER_STARTED)
    if not isinstance(pid, int) or not isinstance(started, list) or len(started) != 2:
        return None
    create_time, ticks = started
    if not isinstance(create_time, int | float):
        return pid  # the worker had already exited when the trial was stamped
    alive = same_process_alive(pid, float(create_time), ticks if isinstance(ticks, int) else None)
    return None if alive else pid


def fail_trials_of_dead_workers(study: optuna.Study, node: str) -> list[FrozenTrial]:
    """Fail the RUNNING trials of ``node`` whose recorded worker process is gone; return them.

    For restarts on one node (journal file, SQLite): trials whose worker died
    with its supervisor (SIGKILL, power loss) would otherwise stay RUNNING,
    and optuna's heartbeat, when there is one, only covers trials whose
    objective had started; stale heartbeats are handled first by optuna
    (``fail_stale_trials``, which runs its retry callback). Trials of other
    nodes or without a recorded worker are left alone. Cost: one read of the
    running trials and a liveness check per stamped trial.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    storage = study._storage
    failed: list[FrozenTrial] = []
    for trial in storage.get_all_trials(study._study_id, deepcopy=False,
                                        states=(TrialState.RUNNING,)):
        if trial.user_attrs.get(NODE) != node:
            continue
        pid = _worker_gone(trial)
        if pid is None:
            continue
        done = fail_trial(storage, trial._trial_id,
                          f"crash: its worker process {pid} on {node} died with the run "
                          "(found when the study was resumed)")
        if done is not None:
            failed.append(done)
    return failed


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


def started_non_retries(storage: Any, study_id: int) -> int:
    """How many trials of the study were started (any state but WAITING) and are not retries.

    Cost: one read of every trial of the study.
    """
    return sum(
        1 for trial in storage.get_all_trials(study_id, deepcopy=False)
        if trial.state != TrialState.WAITING and not is_retry(trial)
    )


def finished_non_retries(storage: Any, study_id: int) -> int:
    """How many trials of the study have finished (complete, pruned or failed) and are not
    retries: each logical trial counts once, when it first ends.

    Cost: one read of every trial of the study.
    """
    return sum(
        1 for trial in storage.get_all_trials(study_id, deepcopy=False)
        if trial.state.is_finished() and not is_retry(trial)
    )
