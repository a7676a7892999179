"""One trial's placement: which subspace it samples, and the attributes that record it."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial

from hwaware_optuna import _attrs
from hwaware_optuna._branches import Branch, branch_key, branch_of, consistent, extends
from hwaware_optuna._view import Keep, TrialFilter
from hwaware_plugins.errors import LeaseTimeoutError, PluginError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

    from hwaware_optuna._runtime import SamplerRuntime
    from hwaware_plugins.hardware import DevicePool
    from hwaware_plugins.hardware._lease import Lease

_log = logging.getLogger(__name__)

SELF_BLOCK_WARNING_S = 10.0
"""A trial waiting this long for a slot while this thread holds every slot is warned of."""


@dataclass(frozen=True)
class Placement:
    """A running trial's lease, its subspace (branch and key), start time and trial filter."""

    lease: Lease
    branch: Branch
    key: str
    started: float
    filter: TrialFilter | None


def choose_branch(runtime: SamplerRuntime, trial: FrozenTrial, device_class: str) -> tuple[
    Branch, str
]:
    """The subspace of a new trial on ``device_class``: ``(branch, key)``.

    Free (``((), "*")``) while nothing branches; the subspace its fixed
    branching values imply (``enqueue_trial``, retries); else the scheduler's
    choice. Call with the sampler's lock held.

    :raises PluginError: the scheduler returned a key it was not given.
    """
    tracker = runtime.tracker
    subspaces = tracker.subspaces
    if not subspaces:
        return (), _attrs.FREE
    fixed = {**trial.params, **trial.system_attrs.get("fixed_params", {})}
    implied = {name: value for name, value in fixed.items() if name in tracker.branch_names}
    if implied:
        matches = [s for s in subspaces.values() if consistent(s.branch, implied)]
        if len(matches) == 1:
            return matches[0].branch, matches[0].key
        branch = branch_of(implied, implied)
        return branch, branch_key(branch)
    key = runtime.scheduler.choose(device_class, tracker.history)
    if key not in subspaces:
        raise PluginError(
            f"scheduler {runtime.scheduler_name!r} chose {key!r}, which is not one of the "
            f"subspaces it was given ({', '.join(subspaces)})"
        )
    return subspaces[key].branch, key


def placement_attrs(trial: FrozenTrial, lease: Lease, key: str) -> dict[str, Any]:
    """The user attributes recording a placement, in write order.

    Stale copies (``RetryFailedTrialCallback`` copies user attributes) are reset
    first; ``hwaware:trial`` comes last, marking the others as this trial's.
    """
    device = lease.device
    values: dict[str, Any] = {k: None for k in _attrs.STALE_KEYS if k in trial.user_attrs}
    values.update(
        {
            _attrs.DEVICE_ID: device.id,
            _attrs.DEVICE_CLASS: device.device_class,
            _attrs.DEVICE_KIND: device.kind,
            _attrs.UUID: device.uuid,
            _attrs.HOST: device.host,
            _attrs.SLOT_ID: lease.slot_id,
            _attrs.SUBSPACE: key,
            _attrs.TRIAL: trial.number,
        }
    )
    return values


def member_of(branch: Branch) -> Keep:
    """A fast predicate for "the trial extends ``branch``" (one parameter: inline)."""
    if len(branch) == 1:
        ((name, value),) = branch
        missing = object()
        return lambda t: t.params.get(name, missing) == value
    return lambda t: extends(t.params, branch)


def branch_value(
    branch: Branch, name: str, distribution: BaseDistribution
) -> tuple[bool, Any]:
    """``(True, value)`` when ``branch`` fixes ``name`` to a value ``distribution`` holds."""
    values: Mapping[str, Any] = dict(branch)
    if name not in values:
        return False, None
    value = values[name]
    try:
        inside = bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError):
        inside = False
    return inside, value


def acquire_slot(pool: DevicePool, *, memory_mb: float | None, timeout: float | None,
                 label: str) -> Lease:
    """Lease a slot for a new trial, waiting up to ``timeout`` seconds (``None``: for ever).

    A wait without a timeout that passes :data:`SELF_BLOCK_WARNING_S` while every
    active lease of the pool was taken by this very thread logs one warning: that
    is ``study.ask()`` called more times than there are slots before any
    ``study.tell()``, which waits for ever unless another thread tells those
    trials. Cost: one extra read of the lease state, only after that long a wait.
    """
    if timeout is not None:
        return pool.acquire(memory_mb=memory_mb, timeout=timeout, label=label)
    try:
        return pool.acquire(memory_mb=memory_mb, timeout=SELF_BLOCK_WARNING_S, label=label)
    except LeaseTimeoutError:
        held = pool.active_leases()
        if held and all(record.pid == os.getpid() and record.thread_id == threading.get_ident()
                        for record in held):
            _log.warning(
                "trial %s has waited %.0f s for a slot of pool %r, and all %d slots are held "
                "by trials asked in this same thread and not yet told: if this thread is "
                "to tell them, it waits for ever. Tell (or fail) a trial before asking "
                "more than %d at once, or set HardwareAwareSampler(lease_timeout=...)",
                label, SELF_BLOCK_WARNING_S, pool.name, len(held), len(held),
            )
    return pool.acquire(memory_mb=memory_mb, timeout=None, label=label)
