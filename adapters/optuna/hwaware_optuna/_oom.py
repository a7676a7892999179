"""Out-of-memory trials under ``optimize``: a larger memory need, and which slots may take it.

When a trial's objective runs out of device memory, its worker process (the
trial is still RUNNING, so it can be written to) raises the trial's memory need
with the core's :func:`~hwaware_plugins.executors.next_memory_need` and records
the decision: :data:`~hwaware_optuna._trials.MEMORY_NEED` and
:data:`~hwaware_optuna._trials.OOM_ACTION`. The coordinator then queues the
retry (it inherits the need) only when the action says so, and submits it with
that memory need, so the executor's pool leases it only where the need fits:
the same GPU at lower packing when a memory-packed GPU has room, else a device
with more memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hwaware_optuna import _attrs
from hwaware_optuna._trials import MEMORY_NEED, OOM_ACTION, RETRY
from hwaware_plugins.executors._oom import next_memory_need
from hwaware_plugins.hardware import Device
from hwaware_plugins.hardware._pool_slots import memory_budget_mb

REPLACING = "re-placing"
"""How an :data:`OOM_ACTION` that queues a retry starts."""

_EPSILON_MB = 1e-6


@dataclass(frozen=True)
class OomPolicy:
    """How a worker sizes the retry of a trial that ran out of device memory.

    :param max_retries: retries a trial may have (``optimize(max_retries=)``).
    :param growth: factor by which the memory need grows (> 1).
    :param memory_fraction: share of a device's free memory a trial may use
        (the pool's ``memory_fraction``).
    :param devices: the node's devices, to tell whether any could take the retry.
    :param exclusive: slots are leased whole (exclusive packing), so the failed
        trial had the whole device and the need grows from the device's memory.
    """

    max_retries: int = 0
    growth: float = 1.5
    memory_fraction: float = 0.95
    devices: tuple[Device, ...] = ()
    exclusive: bool = True


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


def plan_retry(
    trial: Any, device: Device, policy: OomPolicy, leased_mb: float | None = None
) -> tuple[int | None, str]:
    """``(need in MiB or None, action)`` for ``trial``, which just ran out of memory on ``device``.

    The need grows from the trial's current need, the memory its lease reserved
    (``leased_mb``), its reported peak (``hwaware:peak_memory_mb``) and, when
    the slot was leased whole, the device's memory, by ``policy.growth``. The
    action is ``"re-placing with N MiB"`` when a retry is left and some device
    of the node fits the need, else ``"not re-placed: ..."`` saying why; when
    no memory size is known (a device declared without ``memory_gb``) the retry
    goes to any free slot, as after a crash. Pure apart from reading the trial.
    """
    need = next_memory_need(
        requested_mb=memory_need(trial), leased_mb=_mib(leased_mb),
        peak_mb=_mib(trial.user_attrs.get(_attrs.PEAK_MEMORY_MB)),
        device_memory_mb=device.memory_total_mb or device.memory_free_mb,
        exclusive=policy.exclusive, growth=policy.growth,
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


def record_plan(
    trial: Any, device: Device, policy: OomPolicy, leased_mb: float | None = None
) -> str:
    """Write :func:`plan_retry`'s need and action on the running ``trial``; return the action.

    Two storage writes.
    """
    need, action = plan_retry(trial, device, policy, leased_mb)
    if need is not None:
        trial.set_user_attr(MEMORY_NEED, need)
    trial.set_user_attr(OOM_ACTION, action)
    return action


def replacing(trial: Any) -> bool:
    """True when the failed ``trial``'s recorded action asks for a retry on a bigger device."""
    return str(trial.user_attrs.get(OOM_ACTION, "")).startswith(REPLACING)
