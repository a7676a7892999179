"""Event records passed to the lifecycle hooks.

They are immutable and cheap to build; observers receive them through
``hwaware_trial_placed``, ``hwaware_trial_finished`` and
``hwaware_lease_released``. Use :func:`emit` to send one to every plugin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialPlaced:
    """A trial got a device (``device_id``) and a subspace to sample from."""

    framework: str | None
    trial_id: str
    device_id: str
    device_class: str
    subspace: str | None
    scheduler: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialFinished:
    """A trial ended. ``state`` is ``complete``, ``fail``, ``pruned``, ``timeout`` or ``oom``."""

    framework: str | None
    trial_id: str
    device_id: str
    device_class: str
    subspace: str | None
    state: str
    runtime_s: float
    loss: float | None = None
    peak_memory_mb: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class LeaseReleased:
    """A lease on ``slot_id`` ended; ``reclaimed`` is true when its holder had died."""

    pool: str
    slot_id: str
    device_id: str
    holder_pid: int
    reclaimed: bool = False


def emit(hook_name: str, event: object) -> None:
    """Send ``event`` to every plugin implementing ``hook_name``; never raises.

    Cost: one call per implementing plugin. Each observer is called on its
    own, so one that raises is logged at warning level and skipped without
    keeping the event from the others or failing the trial.
    """
    from hwaware_plugins._manager import get_plugin_manager

    hook = getattr(get_plugin_manager().hook, hook_name)
    for impl in reversed(hook.get_hookimpls()):
        kwargs = {"event": event} if "event" in impl.argnames else {}
        try:
            impl.function(**kwargs)
        except Exception:  # observers must never break the caller
            _log.warning(
                "observer %s of %s raised; ignored", impl.plugin_name, hook_name, exc_info=True
            )
