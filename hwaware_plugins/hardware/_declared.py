"""Declared devices: describe hardware in a TOML file instead of probing it.

Use it for machines that cannot be probed from here (other nodes, a simulated
cluster) or to override what probes report. Format::

    [[device]]
    kind = "gpu"          # gpu | cpu | mig
    name = "A100-40GB"    # required for gpu and mig
    count = 4             # default 1
    memory_gb = 40        # required for gpu and mig, optional for cpu
    speed = 4.0           # relative speed, default 1.0
    host = "node-a"       # default: this host
    [device.speedup]      # optional: speed per workload family
    mlp = 20.0

Optional keys: ``device_class`` (default: the name), ``uuids`` (one per
device), ``index`` / ``indices`` (a GPU's CUDA index, one per device),
``cores``, ``slots`` (default: ``cores`` for a cpu, else 1),
``compute_capability`` (``[8, 0]``).

Devices get ids ``"<host>/<kind>:<n>"``, numbered per host and kind across
entries; they are assumed idle (free memory = total) and their speed is
marked ``speed_source="declared"`` so calibration leaves it alone. A GPU
without ``index``/``indices`` gets its position among the GPUs of its host in
declaration order (the ``<n>`` of its id), so a process can be pinned to it
with ``CUDA_VISIBLE_DEVICES=<index>`` when no UUID is declared; two GPUs of one
host never share an index, and no two devices share a uuid. A MIG instance can
only be pinned by its uuid (``MIG-...``): one declared without it serves
simulations and threads, and process executors refuse it before any trial.

Several ``kind = "cpu"`` entries (or ``count = N``) of one host share that
host's cores: ``cores = C`` reserves C cores, and entries without ``cores``
split the cores left over (see :func:`~hwaware_plugins.hardware._cores.cpu_slot_shares`).

An optional top-level ``remote_devices = "simulate"`` lets this host lease
the devices of other hosts as stand-ins (simulations); by default they are
left out of this host's trials (:func:`~hwaware_plugins.hardware.resolve_devices`).
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from hwaware_plugins.errors import DeviceConfigError
from hwaware_plugins.hardware._device import DEVICE_KINDS, Device, DeviceKind, this_host

ALLOWED_KEYS: tuple[str, ...] = (
    "kind",
    "name",
    "count",
    "memory_gb",
    "speed",
    "host",
    "speedup",
    "device_class",
    "uuids",
    "index",
    "indices",
    "cores",
    "slots",
    "compute_capability",
)
"""Keys a ``[[device]]`` entry may have."""

REMOTE_DEVICES: tuple[str, ...] = ("skip", "simulate")
"""Values of the top-level ``remote_devices`` key: what this host does with other hosts' devices."""

_TOP_LEVEL_KEYS = ("device", "remote_devices")


class _EntryError(Exception):
    """A problem in one entry; turned into a DeviceConfigError with file and entry number."""


def _is_number(value: object) -> bool:
    """A finite int or float (not a bool): TOML's ``nan`` and ``inf`` are refused."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(entry: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = entry.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _EntryError(f"{key!r} must be a non-empty string, got {value!r}")
    return value.strip()


MAX_PER_ENTRY = 100_000
"""The largest ``count``, ``slots`` or ``cores`` one entry may declare (a typo's extra
zeros would otherwise build millions of devices)."""


def _int_at_least(entry: Mapping[str, Any], key: str, default: int | None, low: int) -> int | None:
    value = entry.get(key, default)
    if value is None:
        return None
    if not _is_int(value):
        raise _EntryError(f"{key!r} must be an integer, got {value!r}")
    if value < low:
        raise _EntryError(f"{key!r} must be at least {low}, got {value}")
    if value > MAX_PER_ENTRY:
        raise _EntryError(f"{key!r} must be at most {MAX_PER_ENTRY}, got {value}")
    return int(value)


def _kind(entry: Mapping[str, Any]) -> DeviceKind:
    kind = entry.get("kind")
    if kind is None:
        raise _EntryError(f"missing 'kind' (one of {', '.join(DEVICE_KINDS)})")
    if kind not in DEVICE_KINDS:
        raise _EntryError(f"unknown kind {kind!r}; use one of {', '.join(DEVICE_KINDS)}")
    return cast(DeviceKind, kind)


def _memory_mb(entry: Mapping[str, Any], kind: str) -> int | None:
    value = entry.get("memory_gb")
    if value is None:
        if kind != "cpu":
            raise _EntryError(f"missing 'memory_gb' (device memory in GiB) for a {kind}")
        return None
    if not _is_number(value):
        raise _EntryError(f"'memory_gb' must be a finite number, got {value!r}")
    if value < 0:
        raise _EntryError(f"'memory_gb' must not be negative, got {value}")
    return round(float(value) * 1024)


def _speed(entry: Mapping[str, Any]) -> float:
    value = entry.get("speed", 1.0)
    if not _is_number(value) or value <= 0:
        raise _EntryError(f"'speed' must be a finite positive number, got {value!r}")
    return float(value)


def _speedup(entry: Mapping[str, Any]) -> dict[str, float]:
    table = entry.get("speedup", {})
    if not isinstance(table, dict):
        raise _EntryError("'speedup' must be a table of family = positive number")
    for family, value in table.items():
        if not _is_number(value) or value <= 0:
            raise _EntryError(
                f"speedup {family!r} must be a finite positive number, got {value!r}"
            )
    return {str(k): float(v) for k, v in table.items()}


def _uuids(entry: Mapping[str, Any], count: int) -> list[str | None]:
    value = entry.get("uuids")
    if value is None:
        return [None] * count
    if not isinstance(value, list) or not all(isinstance(u, str) and u for u in value):
        raise _EntryError("'uuids' must be a list of non-empty strings")
    if len(value) != count:
        raise _EntryError(f"'uuids' has {len(value)} entries but count is {count}")
    return list(value)


def _indices(entry: Mapping[str, Any], kind: str, count: int) -> list[int | None]:
    """Explicit CUDA indices of the entry's devices (``None`` each when not declared)."""
    given = [key for key in ("index", "indices") if key in entry]
    if not given:
        return [None] * count
    if len(given) == 2:
        raise _EntryError("give either 'index' (one GPU) or 'indices' (one per GPU), not both")
    if kind != "gpu":
        raise _EntryError(
            f"{given[0]!r} applies to kind \"gpu\" only; a {kind} is pinned by its uuid"
        )
    value = entry[given[0]]
    values = [value] if given[0] == "index" else value
    if not isinstance(values, list) or not all(_is_int(v) and v >= 0 for v in values):
        wanted = "an integer" if given[0] == "index" else "a list of integers"
        raise _EntryError(f"{given[0]!r} must be {wanted} >= 0, got {value!r}")
    if len(values) != count:
        raise _EntryError(
            f"{given[0]!r} names {len(values)} GPU{'s' if len(values) != 1 else ''} but count is "
            f"{count}; give one index per GPU ('indices' for several)"
        )
    return [int(v) for v in values]


def _capability(entry: Mapping[str, Any]) -> tuple[int, int] | None:
    value = entry.get("compute_capability")
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2 or not all(_is_int(v) for v in value):
        raise _EntryError(f"'compute_capability' must be [major, minor], got {value!r}")
    return (int(value[0]), int(value[1]))


def _entry_devices(entry: object, counters: dict[tuple[str, str], int]) -> list[Device]:
    """The devices of one ``[[device]]`` entry; ``counters`` numbers ids per host and kind."""
    if not isinstance(entry, dict):
        raise _EntryError("must be a table ([[device]])")
    unknown = sorted(set(entry) - set(ALLOWED_KEYS))
    if unknown:
        raise _EntryError(f"unknown key {unknown[0]!r}; allowed keys: {', '.join(ALLOWED_KEYS)}")
    kind = _kind(entry)
    name = _text(entry, "name", "cpu" if kind == "cpu" else None)
    if name is None:
        raise _EntryError(f"missing 'name' for a {kind}")
    count = cast(int, _int_at_least(entry, "count", 1, 1))
    memory_mb = _memory_mb(entry, kind)
    speed = _speed(entry)
    speedup = _speedup(entry)
    host = cast(str, _text(entry, "host", this_host()))
    device_class = cast(str, _text(entry, "device_class", name))
    cores = _int_at_least(entry, "cores", None, 1)
    default_slots = cores if kind == "cpu" and cores is not None else 1
    slots = cast(int, _int_at_least(entry, "slots", default_slots, 1))
    capability = _capability(entry)
    indices = _indices(entry, kind, count)
    devices = []
    for uuid, index in zip(_uuids(entry, count), indices, strict=True):
        number = counters.get((host, kind), 0)
        counters[(host, kind)] = number + 1
        devices.append(
            Device(
                id=f"{host}/{kind}:{number}",
                kind=kind,
                name=name,
                uuid=uuid,
                index=(number if index is None else index) if kind == "gpu" else None,
                memory_total_mb=memory_mb,
                memory_free_mb=memory_mb,
                compute_capability=capability,
                host=host,
                speed=speed,
                device_class=device_class,
                cores=cores,
                slots=slots,
                speedup=dict(speedup),
                speed_source="declared",
            )
        )
    return devices


@dataclass(frozen=True)
class DeclaredFile:
    """A parsed declared-device document: its devices and its ``remote_devices`` setting.

    :param devices: every device of the document, of every host, in declaration order.
    :param remote_devices: ``"skip"`` (the default) or ``"simulate"`` (see :data:`REMOTE_DEVICES`).
    :param source: the file name, for messages.
    """

    devices: tuple[Device, ...]
    remote_devices: str
    source: str


def _check_distinct_hardware(devices: list[Device]) -> None:
    """Refuse two GPUs of a host with one index, and two devices with one uuid: each
    would be leased as a device of its own while both are the same hardware."""
    uuids: dict[str, str] = {}
    for device in devices:
        if device.uuid is None:
            continue
        if device.uuid in uuids:
            raise _EntryError(
                f"devices {uuids[device.uuid]!r} and {device.id!r} both have uuid "
                f"{device.uuid!r}; a uuid names one device, give each its own"
            )
        uuids[device.uuid] = device.id
    seen: dict[tuple[str, int], str] = {}
    for device in devices:
        if device.kind != "gpu" or device.index is None:
            continue
        key = (device.host, device.index)
        if key in seen:
            raise _EntryError(
                f"GPUs {seen[key]!r} and {device.id!r} both have index {device.index} on host "
                f"{device.host!r}; give each GPU of a host its own index (or declare none)"
            )
        seen[key] = device.id


def _remote_setting(data: Mapping[str, Any], source: str) -> str:
    value = data.get("remote_devices", "skip")
    if value not in REMOTE_DEVICES:
        raise DeviceConfigError(
            f"{source}: remote_devices must be one of {', '.join(map(repr, REMOTE_DEVICES))}, "
            f"got {value!r}"
        )
    return str(value)


def parse_declared_file(text: str, *, source: str = "<string>") -> DeclaredFile:
    """Parse a declared-device TOML document (format: module docstring).

    :param source: the file name used in error messages.
    :raises DeviceConfigError: one line naming ``source``, the entry number and the problem.
    Cost: O(size of the document + devices). Thread-safe.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeviceConfigError(f"{source}: malformed TOML: {exc}") from exc
    unknown = sorted(set(data) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise DeviceConfigError(
            f"{source}: unknown top-level key {unknown[0]!r}; declare devices as [[device]] "
            "tables (the only other top-level key is remote_devices)"
        )
    remote = _remote_setting(data, source)
    entries = data.get("device")
    if not entries:
        raise DeviceConfigError(f"{source}: no [[device]] entries; add at least one")
    if not isinstance(entries, list):
        raise DeviceConfigError(f"{source}: 'device' must be an array of tables ([[device]])")
    counters: dict[tuple[str, str], int] = {}
    devices: list[Device] = []
    for number, entry in enumerate(entries, start=1):
        try:
            devices.extend(_entry_devices(entry, counters))
            _check_distinct_hardware(devices)
        except _EntryError as exc:
            raise DeviceConfigError(f"{source}: [[device]] entry {number}: {exc}") from None
    return DeclaredFile(tuple(devices), remote, source)


def parse_declared_devices(text: str, *, source: str = "<string>") -> list[Device]:
    """The devices of a declared-device document, of every host (:func:`parse_declared_file`).

    :raises DeviceConfigError: one line naming ``source``, the entry number and the problem.
    Cost: O(size of the document + devices). Thread-safe.
    """
    return list(parse_declared_file(text, source=source).devices)


def read_declared_file(path: str | os.PathLike[str]) -> DeclaredFile:
    """Read and parse a declared-device file (see :func:`parse_declared_file`).

    :raises DeviceConfigError: the file is missing or unreadable, or its content is invalid.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeviceConfigError(f"{path}: declared-device file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeviceConfigError(f"{path}: cannot read declared-device file: {exc}") from None
    return parse_declared_file(text, source=str(path))


def load_declared_devices(path: str | os.PathLike[str]) -> list[Device]:
    """Every device of a declared-device file, of every host (see :func:`read_declared_file`).

    For listing and simulation; to run trials use
    :func:`~hwaware_plugins.hardware.resolve_devices`, which leaves out other hosts' devices.

    :raises DeviceConfigError: the file is missing or unreadable, or its content is invalid.
    """
    return list(read_declared_file(path).devices)
