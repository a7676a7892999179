"""Resuming a ``HardwareAwareTrials`` whose coordinator died, and saving it so that it can be.

A coordinator killed mid-run (SIGKILL, a lost node) leaves the trials it was
running in ``JOB_STATE_RUNNING`` in its last ``trials_save_file``. When
``fmin`` starts again with those trials, :func:`fail_stale_trials` turns them
into ERROR trials that say so, and :func:`rerun_doc` makes the new trial that
runs the same point again when retries are allowed. :func:`save_trials`
replaces the pickle atomically, so a coordinator killed while saving leaves the
previous pickle, never a truncated one.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from hyperopt import base

from hwaware_hyperopt._docs import MISC_KEY
from hwaware_hyperopt._evaluate import CANCELLED, fail
from hwaware_plugins._atomic import write_atomic
from hwaware_plugins.executors._payload import dumps

_log = logging.getLogger("hwaware_hyperopt")

COORDINATOR_DIED = "CoordinatorDied"
"""The error kind (``misc["error"][0]``) of a trial whose coordinator died while it ran."""

_KEPT = ("subspace", "scheduler")
"""What a re-run inherits from the ``misc["hwaware"]`` of the trial it repeats."""


def fail_stale_trials(trials: Any) -> list[dict[str, Any]]:
    """Mark the trials a previous run left running as failed; return them.

    Call it when ``fmin`` starts, before this run submits anything: every
    ``JOB_STATE_RUNNING`` trial then belongs to a coordinator that is gone.
    Each becomes ``JOB_STATE_ERROR`` with ``misc["error"] =
    ("CoordinatorDied", reason)`` and ``misc["hwaware"]["state"] = "cancelled"``
    (so the scheduler's history does not blame its subspace); a warning is
    logged. Cost: one pass over the trial documents.
    """
    stale = [doc for doc in trials._dynamic_trials if doc["state"] == base.JOB_STATE_RUNNING]
    for doc in stale:
        doc["misc"].setdefault(MISC_KEY, {})["state"] = CANCELLED
        fail(doc, COORDINATOR_DIED,
             f"coordinator died: trial {doc['tid']} was still running when its fmin stopped "
             "(found on resume)")
        _log.warning("trial %s was left running by a coordinator that died; marked failed",
                     doc["tid"])
    if stale:
        trials.refresh()
    return stale


def retries_used(doc: dict[str, Any]) -> int:
    """The retries a trial document records (``misc["hwaware"]["retries"]``, default 0)."""
    return int((doc.get("misc") or {}).get(MISC_KEY, {}).get("retries", 0) or 0)


def rerun_doc(trials: Any, old: dict[str, Any]) -> dict[str, Any]:
    """A new trial document (next trial id, state NEW) at the same point as ``old``.

    Its ``misc["hwaware"]`` keeps the subspace and scheduler of ``old`` and
    records ``retry_of`` (the old trial id) and ``retries`` (one more than
    ``old`` used). Not inserted into ``trials``. Cost: a copy of the point.
    """
    tid = trials.new_trial_ids(1)[0]
    misc = old["misc"]
    info = {key: misc[MISC_KEY][key] for key in _KEPT if key in misc.get(MISC_KEY, {})}
    info.update(retry_of=old["tid"], retries=retries_used(old) + 1)
    new_misc = {
        "tid": tid,
        "cmd": copy.deepcopy(misc.get("cmd")),
        "workdir": misc.get("workdir"),
        "idxs": {label: [tid] if ids else [] for label, ids in misc["idxs"].items()},
        "vals": copy.deepcopy(misc["vals"]),
        MISC_KEY: info,
    }
    docs: list[dict[str, Any]] = trials.new_trial_docs(
        [tid], [copy.deepcopy(old.get("spec"))], [{"status": base.STATUS_NEW}], [new_misc]
    )
    return docs[0]


def save_trials(trials: Any, path: str) -> None:
    """Pickle ``trials`` to ``path`` atomically and durably (nothing when ``path`` is empty).

    Cost: pickling every trial document, one file write and two fsyncs.
    """
    if path:
        # cloudpickle, as hyperopt's own save: results may hold lambdas (a fitted predict).
        write_atomic(path, dumps(trials))
