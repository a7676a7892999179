"""What hwaware keeps in hyperopt trial documents, and reading it back as scheduler history.

Every trial proposed by :func:`~hwaware_hyperopt.suggest` or run by
:class:`~hwaware_hyperopt.HardwareAwareTrials` carries a dict under
``trial["misc"]["hwaware"]`` (see :data:`MISC_KEY`) with, as far as known:

- ``subspace``: the key of the subspace the trial sampled (``"model=svm"``);
- ``scheduler``: the scheduler that chose it;
- ``device_id``, ``device_class``, ``slot_id``: where it ran;
- ``state``: the executor outcome (``complete``, ``fail``, ``crash``, ``oom``,
  ``timeout``, ``cancelled``); ``runtime_s``: seconds the objective ran;
- ``peak_memory_mb``, ``attempts`` (``[device_id, state, reason]`` per placement),
  ``memory_mb`` (the memory need of the last placement, raised after an
  out-of-memory failure), ``retries`` (re-runs after a crash, OOM or timeout),
  ``retry_of`` (on a re-run of a trial whose coordinator died: that trial's id),
  ``error`` and ``traceback`` for failures, ``unseen_result`` (on a trial
  cancelled because the search stopped, e.g. by ``early_stop_fn``, while it
  was finishing: the result it returned, which the search never saw).

Because all of it lives in the trial documents, any process can rebuild the
scheduler's view from a pickled or stored ``Trials`` object.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hyperopt import base

MISC_KEY = "hwaware"
"""The key of the hwaware record in ``trial["misc"]``."""

ANY_CLASS = "any"
"""The device class recorded for trials run without a known device (plain ``Trials``)."""

MIN_RUNTIME_S = 1e-3
"""Runtimes are floored at this (hyperopt's timestamps have millisecond resolution)."""

_HISTORY_STATES = {"timeout": "timeout", "oom": "oom"}


def hwaware_info(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The hwaware record of a trial document (empty when it has none)."""
    misc = doc.get("misc") or {}
    info = misc.get(MISC_KEY)
    return dict(info) if isinstance(info, Mapping) else {}


def _runtime(doc: Mapping[str, Any], info: Mapping[str, Any]) -> float:
    value = info.get("runtime_s")
    if value is not None:
        number = float(value)
        return max(MIN_RUNTIME_S, number) if math.isfinite(number) else MIN_RUNTIME_S
    book: Any = doc.get("book_time")
    refresh: Any = doc.get("refresh_time")
    try:
        return max(MIN_RUNTIME_S, float((refresh - book).total_seconds()))
    except (TypeError, AttributeError):
        return MIN_RUNTIME_S


def _loss(result: Mapping[str, Any]) -> float | None:
    try:
        value = float(result.get("loss"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def numeric_params(vals: Mapping[str, Any]) -> dict[str, float]:
    """The active values of ``misc["vals"]`` as floats (numpy scalars accepted)."""
    params: dict[str, float] = {}
    for label, values in vals.items():
        if values is not None and len(values) > 0:
            try:
                params[str(label)] = float(values[0])
            except (TypeError, ValueError):
                continue
    return params


def history_state(doc: Mapping[str, Any]) -> str | None:
    """The scheduler-history state of a finished trial, or ``None`` if it is not finished.

    ``DONE`` with status ``ok`` and a finite loss is ``complete``; a per-trial
    timeout or an out-of-memory failure keeps its kind; every other failure is
    ``fail``. Cancelled trials (``JOB_STATE_CANCEL``, and ERROR trials whose
    hwaware state is ``cancelled``: their coordinator died) say nothing about
    their subspace and are skipped (``None``).
    """
    state = doc.get("state")
    if state == base.JOB_STATE_DONE:
        result = doc.get("result") or {}
        if result.get("status") == base.STATUS_OK and _loss(result) is not None:
            return "complete"
        return "fail"
    if state == base.JOB_STATE_ERROR:
        executor_state = str(hwaware_info(doc).get("state"))
        if executor_state == "cancelled":
            return None
        return _HISTORY_STATES.get(executor_state, "fail")
    return None


def history_record(doc: Mapping[str, Any], subspace: str) -> dict[str, Any] | None:
    """The :class:`~hwaware_plugins.scheduling.History` record of a finished trial, or ``None``.

    The device class defaults to :data:`ANY_CLASS`, the runtime to
    ``refresh_time - book_time``, floored at :data:`MIN_RUNTIME_S`. Cost: O(parameters).
    """
    state = history_state(doc)
    if state is None:
        return None
    info = hwaware_info(doc)
    result = doc.get("result") or {}
    misc = doc.get("misc") or {}
    return {
        "subspace": subspace,
        "device_class": str(info.get("device_class") or ANY_CLASS),
        "runtime_s": _runtime(doc, info),
        "loss": _loss(result) if state == "complete" else None,
        "state": state,
        "peak_memory_mb": info.get("peak_memory_mb"),
        "params": numeric_params(misc.get("vals") or {}),
    }
