"""One evaluation outside fmin's process: the point to send, and writing the outcome back.

The search space is evaluated here, in the driver (so a worker process never
imports hyperopt unless the objective does); only the objective and the
concrete point travel to the pinned worker. The returned value is checked as
``hyperopt.base.Domain.evaluate`` would check it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from hyperopt import base, pyll
from hyperopt.utils import coarse_utcnow

from hwaware_hyperopt._docs import MISC_KEY

CANCELLED = "cancelled"


def trial_point(domain: base.Domain, doc: Mapping[str, Any]) -> Any:
    """The value of the search space for a trial document (what the objective receives).

    :raises Exception: whatever ``pyll.rec_eval`` raises for a malformed document.
    """
    config = base.spec_from_misc(doc["misc"])
    memo = domain.memo_from_config(config)
    return pyll.rec_eval(domain.expr, memo=memo, print_node_on_error=False)


class InvalidResult(ValueError):
    """The objective returned something hyperopt cannot use as a result."""


def result_dict(value: Any) -> dict[str, Any]:
    """Normalise an objective's return value as ``Domain.evaluate`` does.

    A number becomes ``{"loss": float, "status": "ok"}``; a mapping needs a
    ``status`` from ``hyperopt.STATUS_STRINGS`` and, when ``ok``, a numeric
    ``loss``. Unlike ``Domain.evaluate``, a NaN or infinite loss is refused:
    hyperopt would record it as a success that no algorithm can rank.

    :raises InvalidResult: naming what is wrong.
    """
    if isinstance(value, bool):
        raise InvalidResult(f"the objective returned a bool ({value}); return a float loss")
    if isinstance(value, int | float | np.number):
        return {"loss": _finite(float(value)), "status": base.STATUS_OK}
    if not isinstance(value, Mapping):
        raise InvalidResult(
            f"the objective returned a {type(value).__name__}; return a float or a dict "
            "with 'status' and 'loss'"
        )
    result = dict(value)
    status = result.get("status")
    if status not in base.STATUS_STRINGS:
        raise InvalidResult(f"result status {status!r} is not one of {base.STATUS_STRINGS}")
    if status == base.STATUS_OK:
        try:
            result["loss"] = float(result["loss"])
        except (TypeError, KeyError, ValueError) as exc:
            raise InvalidResult(
                f"a result with status 'ok' needs a numeric 'loss', got {result.get('loss')!r}"
            ) from exc
        _finite(result["loss"])
    return result


def _finite(loss: float) -> float:
    if not math.isfinite(loss):
        raise InvalidResult(
            f"the objective returned {loss} as the loss; return a finite number, or a dict "
            "with status 'fail' for a failed evaluation"
        )
    return loss


def start(doc: dict[str, Any]) -> None:
    """Mark a trial document running (as fmin's serial evaluation does)."""
    now = coarse_utcnow()
    doc["state"] = base.JOB_STATE_RUNNING
    doc["book_time"] = now
    doc["refresh_time"] = now


def _placement(outcome: Any, earlier_retries: int) -> dict[str, Any]:
    runtime = float(getattr(outcome, "runtime_s", 0.0) or 0.0)
    return {
        "state": outcome.state,
        "runtime_s": runtime if math.isfinite(runtime) else 0.0,
        "device_id": outcome.device_id,
        "device_class": outcome.device_class,
        "slot_id": outcome.slot_id,
        "peak_memory_mb": outcome.peak_memory_mb,
        "attempts": [list(a) for a in (outcome.attempts or [])],
        "memory_mb": getattr(outcome, "memory_mb", None),
        "retries": earlier_retries + int(getattr(outcome, "retries", 0) or 0),
    }


def fail(doc: dict[str, Any], kind: str, error: str, traceback: str | None = None,
         *, state: int = base.JOB_STATE_ERROR) -> None:
    """Mark a trial failed (``JOB_STATE_ERROR``) or cancelled, with its reason and traceback."""
    doc["state"] = state
    doc["misc"]["error"] = (kind, error)
    doc["result"] = {"status": base.STATUS_FAIL, "failure": error}
    if traceback:
        doc["result"]["traceback"] = traceback
    doc["refresh_time"] = coarse_utcnow()
    info = doc["misc"].setdefault(MISC_KEY, {})
    info.setdefault("state", CANCELLED if state == base.JOB_STATE_CANCEL else "fail")
    info["error"] = error
    if traceback:
        info["traceback"] = traceback


def write_outcome(trials: base.Trials, doc: dict[str, Any], outcome: Any) -> str | None:
    """Write an executor outcome into its trial document; return the error, if any.

    ``complete`` with a valid result: ``JOB_STATE_DONE`` and the result (its
    ``attachments`` moved to ``trials.trial_attachments``). ``cancelled``:
    ``JOB_STATE_CANCEL``. Anything else (the objective raised, crashed, ran out
    of memory or time, returned an invalid result): ``JOB_STATE_ERROR`` with
    ``misc["error"] = (kind, message)`` and the traceback in
    ``result["traceback"]``. The placement goes to ``misc["hwaware"]`` in every
    case, with ``retries`` (the retries this trial used, including those of the
    trial it re-runs) and ``memory_mb`` (the memory need of the last placement).
    """
    info = doc["misc"].setdefault(MISC_KEY, {})
    info.update(_placement(outcome, int(info.get("retries", 0) or 0)))
    if outcome.state == "cancelled":
        fail(doc, "cancelled", outcome.error or "cancelled", state=base.JOB_STATE_CANCEL)
        return None
    if outcome.state != "complete":
        kind = (outcome.error or outcome.state).split(":", 1)[0] if outcome.state == "fail" \
            else outcome.state
        message = str(outcome.error or outcome.state)
        fail(doc, kind, message, outcome.traceback)
        return message
    try:
        result = result_dict(outcome.value)
    except InvalidResult as exc:
        doc["misc"][MISC_KEY]["state"] = "fail"
        fail(doc, "InvalidResult", str(exc))
        return f"InvalidResult: {exc}"
    attachments = result.pop("attachments", None) or {}
    for name, value in attachments.items():
        trials.trial_attachments(doc)[name] = value
    doc["state"] = base.JOB_STATE_DONE
    doc["result"] = result
    doc["refresh_time"] = coarse_utcnow()
    return None
