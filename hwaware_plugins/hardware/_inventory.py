"""The device inventory: probe through every plugin, or load a declared file; device classes."""

from __future__ import annotations

import os
import threading
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from statistics import fmean
from typing import Any, cast

from hwaware_plugins._forksafe import fork_safe
from hwaware_plugins.errors import ConfigError, DeviceConfigError, PluginError
from hwaware_plugins.hardware._declared import REMOTE_DEVICES, DeclaredFile, read_declared_file
from hwaware_plugins.hardware._device import Device, this_host
from hwaware_plugins.scheduling._base import DeviceClassInfo

DEVICES_ENV = "HWAWARE_DEVICES"
"""Environment variable naming a declared-device file used instead of probing."""


class RemoteDevicesWarning(UserWarning):
    """A declared-device file names devices of other hosts, which this host's trials skip."""


_warned: set[tuple[str, tuple[str, ...]]] = set()
_warned_lock = fork_safe(threading.Lock())


def local_declared_devices(
    declared: DeclaredFile, *, remote_devices: str | None = None
) -> list[Device]:
    """The devices of ``declared`` this host's trials may lease.

    ``"skip"`` (the default, unless the file says ``remote_devices =
    "simulate"``): only devices whose ``host`` is this host; the first time a
    file with other hosts' devices is seen in this process a
    :class:`RemoteDevicesWarning` names those hosts and what to do.
    ``"simulate"``: every device, silently (stand-ins for a simulated
    cluster; ``torch_device_for`` still never maps them to a local GPU).
    Cost: O(devices).

    :param remote_devices: overrides the file's setting.
    :raises DeviceConfigError: an unknown ``remote_devices``, or no device of the
        file is on this host (naming the hosts it declares).
    """
    mode = declared.remote_devices if remote_devices is None else remote_devices
    if mode not in REMOTE_DEVICES:
        raise DeviceConfigError(
            f"remote_devices must be one of {', '.join(map(repr, REMOTE_DEVICES))}, got {mode!r}"
        )
    if mode == "simulate":
        return list(declared.devices)
    host = this_host()
    local = [device for device in declared.devices if device.host == host]
    others = tuple(sorted({device.host for device in declared.devices} - {host}))
    if not local:
        raise DeviceConfigError(
            f"{declared.source}: no device is on this host {host!r} (the file declares hosts "
            f"{', '.join(others)}); run `hwaware worker --devices {declared.source}` on those "
            "hosts, or add remote_devices = \"simulate\" at the top of the file to lease them "
            "here as stand-ins"
        )
    if others:
        with _warned_lock:
            first = (declared.source, others) not in _warned
            _warned.add((declared.source, others))
        if first:
            warnings.warn(
                f"{declared.source} declares devices of host{'s' if len(others) > 1 else ''} "
                f"{', '.join(others)}, not of this host {host!r}: this host's trials use only "
                f"its own {len(local)} device{'s' if len(local) != 1 else ''}; run `hwaware "
                "worker` on those hosts to use theirs, or add remote_devices = \"simulate\" to "
                "the file to lease them here as stand-ins",
                RemoteDevicesWarning,
                stacklevel=3,
            )
    return local


def _check_unique(devices: Sequence[Device], owners: Sequence[str], what: str) -> None:
    seen: dict[str, str] = {}
    for device, owner in zip(devices, owners, strict=True):
        if device.id in seen:
            raise DeviceConfigError(
                f"device id {device.id!r} appears twice ({what} {seen[device.id]!r} and "
                f"{owner!r}); device ids must be unique"
            )
        seen[device.id] = owner


def discover_devices(config: Mapping[str, Any] | None = None) -> list[Device]:
    """Ask every plugin's ``hwaware_discover_devices`` hook for devices, in registration order.

    :param config: options passed to the hook (e.g. ``{"skip_nvml": True}``,
        ``{"nvml": FakeNvml(...)}``).
    :raises DeviceConfigError: two devices share an id (naming both plugins).
    :raises PluginError: a plugin's probe raised or returned something not a Device.
    Cost: the probes themselves (NVML session, /proc reads). Thread-safe.
    """
    from hwaware_plugins._manager import get_plugin_manager

    options: Mapping[str, Any] = dict(config or {})
    hook = get_plugin_manager().hook.hwaware_discover_devices
    devices: list[Device] = []
    owners: list[str] = []
    for impl in hook.get_hookimpls():
        if impl.wrapper or impl.hookwrapper:
            continue
        kwargs = {name: options for name in impl.argnames if name == "config"}
        try:
            found = cast("Sequence[object] | None", impl.function(**kwargs))
        except ConfigError:
            raise  # names what to fix itself (e.g. the simulated NVML file)
        except Exception as exc:
            raise PluginError(
                f"device probe of plugin {impl.plugin_name!r} failed: {exc!r}"
            ) from exc
        for device in found or ():
            if not isinstance(device, Device):
                raise PluginError(
                    f"plugin {impl.plugin_name!r} returned {device!r} from "
                    "hwaware_discover_devices; return Device objects"
                )
            devices.append(device)
            owners.append(impl.plugin_name)
    _check_unique(devices, owners, "plugins")
    return devices


def resolve_devices(
    devices: str | os.PathLike[str] | Sequence[Device] | None,
    *,
    remote_devices: str | None = None,
) -> list[Device]:
    """Turn what a user passes as ``devices=`` into a validated list of devices to lease.

    - ``None``: the file named by ``HWAWARE_DEVICES`` if set, else :func:`discover_devices`;
    - a path: a declared-device file, this host's devices only unless the file
      (or ``remote_devices``) says ``"simulate"`` (:func:`local_declared_devices`);
    - a sequence of :class:`Device`: a copy, checked to hold only devices with unique ids.

    :param remote_devices: ``"skip"`` or ``"simulate"``, overriding a file's setting.
    :raises DeviceConfigError: an empty path, invalid file, a file with no device on
        this host, empty list, non-Device items or duplicate ids.
    """
    if devices is None:
        declared = os.environ.get(DEVICES_ENV)
        if not declared:
            return discover_devices(None)
        if not declared.strip():
            raise DeviceConfigError(
                f"{DEVICES_ENV} is blank; set it to a declared-device TOML file, or unset "
                "it to probe this machine"
            )
        devices = declared
    if isinstance(devices, str) and not devices.strip():
        raise DeviceConfigError(
            "devices is an empty string; pass a declared-device TOML file path, a list of "
            "Device, or None to probe this machine"
        )
    if isinstance(devices, str | os.PathLike):
        return local_declared_devices(read_declared_file(devices), remote_devices=remote_devices)
    if isinstance(devices, Mapping | bytes) or not isinstance(devices, Sequence):
        raise DeviceConfigError(
            f"devices must be None, a declared-device file path or a list of Device, "
            f"got {type(devices).__name__}"
        )
    items: list[object] = list(devices)
    if not items:
        raise DeviceConfigError("the device list is empty; pass at least one Device")
    result: list[Device] = []
    for position, device in enumerate(items):
        if not isinstance(device, Device):
            raise DeviceConfigError(
                f"devices[{position}] is a {type(device).__name__}, not a Device"
            )
        result.append(device)
    _check_unique(result, [f"devices[{i}]" for i in range(len(result))], "at")
    return result


def _merge_speedups(speedups: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per family, the mean over the devices that declare it."""
    values: dict[str, list[float]] = defaultdict(list)
    for table in speedups:
        for family, value in table.items():
            values[family].append(float(value))
    return {family: fmean(v) for family, v in sorted(values.items())}


def device_classes(devices: Sequence[Device]) -> list[DeviceClassInfo]:
    """One :class:`DeviceClassInfo` per device class, fastest first, ties by name.

    A class's speed is the mean speed of its devices, its slots the sum of their
    slots, its speedup the per-family mean of their declared speedups.
    Cost: O(devices). Pure.
    """
    groups: dict[str, list[Device]] = defaultdict(list)
    for device in devices:
        groups[device.device_class].append(device)
    infos = [
        DeviceClassInfo(
            name=name,
            speed=fmean(d.speed for d in members),
            slots=sum(d.slots for d in members),
            speedup=_merge_speedups([d.speedup for d in members]),
        )
        for name, members in groups.items()
    ]
    return sorted(infos, key=lambda info: (-info.speed, info.name))
