"""Checks shared by the built-in schedulers."""

from __future__ import annotations

from collections.abc import Sequence

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.scheduling._base import DeviceClassInfo, SubspaceInfo


def checked_setup(
    scheduler: str,
    subspaces: Sequence[SubspaceInfo],
    device_classes: Sequence[DeviceClassInfo],
) -> tuple[list[SubspaceInfo], list[DeviceClassInfo]]:
    """Validate ``setup`` arguments; return them as lists.

    :raises ConfigError: when either is empty, keys repeat, or a class has no
        slots or a non-positive speed.
    """
    subs, classes = list(subspaces), list(device_classes)
    if not subs:
        raise ConfigError(f"scheduler {scheduler!r}: setup needs at least one subspace")
    if not classes:
        raise ConfigError(f"scheduler {scheduler!r}: setup needs at least one device class")
    keys = [s.key for s in subs]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"scheduler {scheduler!r}: subspace keys repeat: {keys}")
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        raise ConfigError(f"scheduler {scheduler!r}: device class names repeat: {names}")
    for c in classes:
        if not c.speed > 0:
            raise ConfigError(
                f"scheduler {scheduler!r}: device class {c.name!r} has speed {c.speed}; "
                "speeds must be > 0"
            )
        if c.slots < 1:
            raise ConfigError(
                f"scheduler {scheduler!r}: device class {c.name!r} has {c.slots} slots; need >= 1"
            )
    return subs, classes


def not_set_up(scheduler: str) -> ConfigError:
    """The error ``choose`` raises before ``setup``."""
    return ConfigError(f"scheduler {scheduler!r}: call setup(subspaces, device_classes) first")


def unknown_class(scheduler: str, device_class: str, known: Sequence[str]) -> ConfigError:
    """The error ``choose`` raises for a device class ``setup`` did not name."""
    return ConfigError(
        f"scheduler {scheduler!r}: unknown device class {device_class!r}; "
        f"setup named {', '.join(known)} (call setup again when classes change)"
    )
