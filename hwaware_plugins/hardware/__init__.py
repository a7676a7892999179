"""Devices: the model, probes (NVML, host, declared files, speed), the device pool and pinning."""

from hwaware_plugins.hardware._declared import load_declared_devices, parse_declared_devices
from hwaware_plugins.hardware._device import DEVICE_KINDS, Device, DeviceKind, this_host
from hwaware_plugins.hardware._host import probe_host_devices
from hwaware_plugins.hardware._inventory import (
    DEVICES_ENV,
    RemoteDevicesWarning,
    device_classes,
    discover_devices,
    resolve_devices,
)
from hwaware_plugins.hardware._lease import Lease
from hwaware_plugins.hardware._leasefile import LeaseRecord, default_state_dir
from hwaware_plugins.hardware._nvml import foreign_process_count, probe_nvml_devices
from hwaware_plugins.hardware._pinning import (
    PinningError,
    apply_pinning_in_child,
    cuda_initialized,
    pinning_env,
)
from hwaware_plugins.hardware._pool import DevicePool
from hwaware_plugins.hardware._pool_slots import PACKINGS, DeviceCapacity
from hwaware_plugins.hardware._speed import REFERENCE_GFLOPS, calibrate, measure_speed

__all__ = [
    "DEVICES_ENV",
    "DEVICE_KINDS",
    "PACKINGS",
    "REFERENCE_GFLOPS",
    "Device",
    "DeviceCapacity",
    "DeviceKind",
    "DevicePool",
    "Lease",
    "LeaseRecord",
    "PinningError",
    "RemoteDevicesWarning",
    "apply_pinning_in_child",
    "calibrate",
    "cuda_initialized",
    "default_state_dir",
    "device_classes",
    "discover_devices",
    "foreign_process_count",
    "load_declared_devices",
    "measure_speed",
    "parse_declared_devices",
    "pinning_env",
    "probe_host_devices",
    "probe_nvml_devices",
    "resolve_devices",
    "this_host",
]
