"""The core's own plugin: built-in device probes and the core's named components.

It is registered through the ``hwaware_plugins`` entry point ``core`` like any
third-party plugin (and directly when running from an uninstalled tree).
Every area of the core lists its components in :func:`hwaware_register_components`;
imports are local so that listing plugins stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hwaware_plugins._components import Component
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.hookspecs import hookimpl


@hookimpl
def hwaware_discover_devices(config: Mapping[str, Any]) -> Sequence[Device] | None:
    """Probe this host: its CPU through psutil and its GPUs through NVML."""
    from hwaware_plugins.hardware._host import probe_host_devices
    from hwaware_plugins.hardware._nvml import probe_nvml_devices

    devices: list[Device] = []
    if not config.get("skip_host", False):
        devices.extend(probe_host_devices())
    if not config.get("skip_nvml", False):
        devices.extend(probe_nvml_devices(nvml=config.get("nvml")))
    return devices


@hookimpl
def hwaware_register_components() -> Sequence[Component]:
    """The core's complexity rules, schedulers, executors and training policies."""
    found: list[Component] = []
    for module_name in _COMPONENT_MODULES:
        module = __import__(module_name, fromlist=["COMPONENTS"])
        found.extend(module.COMPONENTS)
    return found


# Modules that define a module-level ``COMPONENTS`` list, one per area.
_COMPONENT_MODULES: tuple[str, ...] = (
    "hwaware_plugins.space._registry",
    "hwaware_plugins.scheduling._registry",
    "hwaware_plugins.executors._registry",
    "hwaware_plugins.training._registry",
)
