"""Out-of-memory trials under ``optimize``: a larger memory need, and which slots may take it.

When a trial's objective runs out of device memory, its worker (the trial is
still RUNNING, so it can be written to) raises the trial's memory need with the
core's :func:`~hwaware_plugins.executors._oom.next_memory_need` and records the
decision: :data:`~hwaware_optuna._worker_protocol.MEMORY_NEED` and
:data:`~hwaware_optuna._worker_protocol.OOM_ACTION`. The supervisor then queues
the retry (it inherits the need) only when the action says so, and hands it
only to a worker whose device's memory budget holds the need: a device with
more free memory. Slots are leased whole, so the need always exceeds the
device that failed.
"""

from __future__ import annotations

import math
from typing import Any

from hwaware_optuna import _attrs
from hwaware_optuna._worker_protocol import MEMORY_NEED, OOM_ACTION, RETRY, OomPolicy
from hwaware_plugins.executors._oom import next_memory_need
from hwaware_plugins.hardware import Device
from hwaware_plugins.hardware._pool_slots import memory_budget_mb

REPLACING = "re-placing"
"""How an :data:`OOM_ACTION` that queues a retry starts."""

_EPSILON_MB = 1e-6


def _mib(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def memory_need(trial: Any) -> float | None:
    """The device memory (MiB) a trial or queued retry needs, or ``None`` when unknown."""
    return _mib(trial.user_attrs.get(MEMORY_NEED))


def fits(device: Device, need_mb: float | None, memory_fraction: float) -> bool:
    """True when a trial needing ``need_mb`` may run on ``device``.

    No need fits anywhere; a need fits only an accelerator whose memory budget
    (``memory_fraction`` of its free memory, else of its total, as the device
    pool counts it) holds it, or one whose memory is unknown. Cost: O(1).
    """
    if need_mb is None:
        return True
    if not device.is_accelerator:
        return False
    budget = memory_budget_mb(device, memory_fraction)
    return budget is None or need_mb <= budget + _EPSILON_MB


def plan_retry(trial: Any, device: Device, policy: OomPolicy) -> tuple[int | None, str]:
    """``(need in MiB or None, action)`` for ``trial``, which just ran out of memory on ``device``.

    The need grows from the trial's current need, its reported peak
    (``hwaware:peak_memory_mb``) and the device's memory (the slot was leased
    whole) by ``policy.growth``. The action is ``"re-placing with N MiB"``
    when a retry is left and some device of the node fits the need, else
    ``"not re-placed: ..."`` saying why; when no memory size is known (a device
    declared without ``memory_gb``) the retry goes to any free slot, as after
    a crash. Pure apart from reading the trial.
    """
    need = next_memory_need(
        requested_mb=memory_need(trial), leased_mb=None,
        peak_mb=_mib(trial.user_attrs.get(_attrs.PEAK_MEMORY_MB)),
        device_memory_mb=device.memory_total_mb or device.memory_free_mb,
        exclusive=True, growth=policy.growth,
    )
    used = trial.user_attrs.get(RETRY, 0)
    used = used if isinstance(used, int) else 0
    if used >= policy.max_retries:
        return need, f"not re-placed: retried {used} of max_retries={policy.max_retries} times"
    if need is None:
        return None, f"{REPLACING} on any free slot: no memory size known to grow from " \
            "(declare the devices' memory_gb)"
    if not any(fits(d, need, policy.memory_fraction) for d in policy.devices):
        return need, f"not re-placed: no device of this node has {need} MiB to give it"
    return need, f"{REPLACING} with {need} MiB"


def record_plan(trial: Any, device: Device, policy: OomPolicy) -> None:
    """Write :func:`plan_retry`'s need and action on the running ``trial`` (two storage writes)."""
    need, action = plan_retry(trial, device, policy)
    if need is not None:
        trial.set_user_attr(MEMORY_NEED, need)
    trial.set_user_attr(OOM_ACTION, action)


def replacing(trial: Any) -> bool:
    """True when the failed ``trial``'s recorded action asks for a retry on a bigger device."""
    return str(trial.user_attrs.get(OOM_ACTION, "")).startswith(REPLACING)
