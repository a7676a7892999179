"""Devices: the model, probes (NVML, host, declared files, speed), the device pool and pinning."""

from hwaware_plugins.hardware._device import DEVICE_KINDS, Device, DeviceKind, this_host

__all__ = ["DEVICE_KINDS", "Device", "DeviceKind", "this_host"]
