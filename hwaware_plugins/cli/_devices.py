"""``hwaware devices``: list the devices trials can be placed on, and their classes."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any

from hwaware_plugins.cli._table import format_table
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware import (
    DEVICES_ENV,
    Device,
    calibrate,
    device_classes,
    load_declared_devices,
    resolve_devices,
)

_DEVICE_COLUMNS = ("id", "kind", "name", "class", "memory MiB", "speed", "host", "foreign")
_CLASS_COLUMNS = ("class", "devices", "slots", "speed")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``devices`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "devices",
        help="list CPUs, GPUs and MIG instances (probed or declared) and their classes",
    )
    parser.add_argument(
        "--devices",
        metavar="FILE",
        help="a declared-device TOML file (default: $HWAWARE_DEVICES, else probe this host)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of devices")
    parser.add_argument(
        "--measure-speed",
        action="store_true",
        help="measure the speed of probed devices (cached; declared speeds are kept)",
    )
    parser.set_defaults(handler=run)
    return parser


def _memory(device: Device) -> str | None:
    if device.memory_total_mb is None:
        return None
    free = "-" if device.memory_free_mb is None else str(device.memory_free_mb)
    return f"{device.memory_total_mb}/{free}"


def _speed(device: Device) -> str:
    suffix = "" if device.speed_source == "default" else f" ({device.speed_source})"
    return f"{device.speed:.4g}{suffix}"


def _device_rows(devices: Sequence[Device]) -> list[dict[str, Any]]:
    return [
        {
            "id": d.id,
            "kind": d.kind,
            "name": d.name,
            "class": d.device_class,
            "memory MiB": _memory(d),
            "speed": _speed(d),
            "host": d.host,
            "foreign": d.foreign_processes,
        }
        for d in devices
    ]


def _class_rows(devices: Sequence[Device]) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for device in devices:
        counts[device.device_class] = counts.get(device.device_class, 0) + 1
    return [
        {"class": c.name, "devices": counts[c.name], "slots": c.slots, "speed": c.speed}
        for c in device_classes(devices)
    ]


def run(args: argparse.Namespace) -> int:
    """Print the devices (table plus class summary, or JSON); 0 on success."""
    # A file is listed whole, every host's devices (trials lease only this host's).
    if args.devices is not None and not args.devices.strip():
        raise ConfigError("--devices is empty; give a declared-device TOML file, or leave "
                          "the option out to probe this machine")
    declared = args.devices or os.environ.get(DEVICES_ENV, "").strip()
    devices = load_declared_devices(declared) if declared else resolve_devices(None)
    if args.measure_speed:
        devices = calibrate(devices)
    if args.json:
        print(json.dumps([d.to_dict() for d in devices], indent=2))
        return 0
    print(format_table(_device_rows(devices), _DEVICE_COLUMNS))
    print()
    print(format_table(_class_rows(devices), _CLASS_COLUMNS))
    return 0
