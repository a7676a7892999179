"""The NVML probe: GPUs and MIG instances of this host, and live foreign-process checks.

Talks to NVML through a module with pynvml's API: ``pynvml`` (the nvidia-ml-py
distribution) by default, a :class:`~hwaware_plugins.hardware.fake_nvml.FakeNvml`
when ``HWAWARE_FAKE_NVML`` names a fake file, or any object passed as ``nvml``.

A process counts as *foreign* on a GPU when its PID is neither this process nor
one of its ancestors or descendants. NVML reports PIDs of the host's PID
namespace: inside a container without the host PID namespace, every process on
the GPU looks foreign, including this study's own trials in sibling containers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Any

import psutil

from hwaware_plugins.errors import DeviceConfigError
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.hardware.fake_nvml import FAKE_NVML_ENV, FakeNvml

_log = logging.getLogger(__name__)
_MIB = 1024 * 1024
_NVML_ERROR_NOT_FOUND = 6
_NVML_DEVICE_MIG_ENABLE = 1


def _load_nvml(nvml: Any | None) -> Any | None:
    """The NVML module to use, or ``None`` when the library is not installed."""
    if nvml is not None:
        return nvml
    fake = os.environ.get(FAKE_NVML_ENV)
    if fake:
        return FakeNvml.from_toml(fake)
    try:
        import pynvml
    except ImportError as exc:
        _log.debug("pynvml is not importable (%s); no GPUs listed", exc)
        return None
    return pynvml


def _init(nvml: Any) -> bool:
    """``nvmlInit``; False (with a debug line) when there is no library or driver."""
    try:
        nvml.nvmlInit()
    except (nvml.NVMLError, OSError) as exc:
        _log.debug("NVML is unavailable (%s); no GPUs listed", exc)
        return False
    return True


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except nvml.NVMLError as exc:
        _log.debug("nvmlShutdown failed: %s", exc)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def own_pids() -> set[int]:
    """PIDs that are not foreign: this process, its ancestors and its descendants.

    Cost: one scan of the process table (a few ms).
    """
    me = psutil.Process()
    pids = {me.pid}
    try:
        pids.update(p.pid for p in me.parents())
        pids.update(p.pid for p in me.children(recursive=True))
    except psutil.Error as exc:
        _log.debug("could not list related processes: %s", exc)
    return pids


def _count_foreign(nvml: Any, handle: Any, own: Collection[int]) -> int:
    """Distinct PIDs of compute and graphics processes on ``handle`` not in ``own``."""
    pids: set[int] = set()
    for fn_name in (
        "nvmlDeviceGetComputeRunningProcesses",
        "nvmlDeviceGetGraphicsRunningProcesses",
    ):
        fn = getattr(nvml, fn_name, None)
        if fn is None:
            continue
        try:
            pids.update(int(p.pid) for p in fn(handle))
        except nvml.NVMLError as exc:
            _log.debug("%s failed: %s; assuming no such processes", fn_name, exc)
    return len(pids - set(own))


def _optional(nvml: Any, read: Callable[[], Any]) -> Any:
    """Value of ``read()``, or ``None`` when NVML does not support it on this device."""
    try:
        return read()
    except nvml.NVMLError as exc:
        _log.debug("optional NVML query failed: %s", exc)
        return None


def _mig_enabled(nvml: Any, handle: Any) -> bool:
    getter = getattr(nvml, "nvmlDeviceGetMigMode", None)
    if getter is None:
        return False
    mode = _optional(nvml, lambda: getter(handle))
    enabled = getattr(nvml, "NVML_DEVICE_MIG_ENABLE", _NVML_DEVICE_MIG_ENABLE)
    return mode is not None and int(mode[0]) == enabled


def _mig_class(gpu_name: str, mig_name: str, memory_total_mb: int) -> str:
    """``"<gpu> MIG <profile>"``: the driver's MIG name when it has that shape."""
    if " MIG " in mig_name:
        return mig_name
    return f"{gpu_name} MIG {round(memory_total_mb / 1024)}gb"


def _probe_migs(
    nvml: Any, handle: Any, index: int, parent: Device, own: Collection[int]
) -> list[Device]:
    devices: list[Device] = []
    for slot in range(int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle))):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
        except nvml.NVMLError:
            continue  # an empty MIG slot
        mem = nvml.nvmlDeviceGetMemoryInfo(mig)
        total = int(mem.total) // _MIB
        mig_name = _text(nvml.nvmlDeviceGetName(mig))
        device_class = _mig_class(parent.name, mig_name, total)
        devices.append(
            Device(
                id=f"mig:{index}.{slot}",
                kind="mig",
                name=device_class,
                uuid=_text(nvml.nvmlDeviceGetUUID(mig)),
                memory_total_mb=total,
                memory_free_mb=int(mem.free) // _MIB,
                compute_capability=parent.compute_capability,
                device_class=device_class,
                foreign_processes=_count_foreign(nvml, mig, own),
                index=index,
                parent_uuid=parent.uuid,
            )
        )
    if not devices:
        _log.info("MIG mode is on for gpu:%d but it has no MIG instances; skipping it", index)
    return devices


def _probe_gpu(nvml: Any, index: int, own: Collection[int]) -> list[Device]:
    """The GPU at ``index``, or its MIG instances when MIG mode is on."""
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    mem = nvml.nvmlDeviceGetMemoryInfo(handle)
    capability = _optional(nvml, lambda: nvml.nvmlDeviceGetCudaComputeCapability(handle))
    utilization = _optional(nvml, lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    gpu = Device(
        id=f"gpu:{index}",
        kind="gpu",
        name=_text(nvml.nvmlDeviceGetName(handle)),
        uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
        memory_total_mb=int(mem.total) // _MIB,
        memory_free_mb=int(mem.free) // _MIB,
        compute_capability=None if capability is None else (int(capability[0]), int(capability[1])),
        index=index,
        utilization=None if utilization is None else float(utilization),
    )
    if _mig_enabled(nvml, handle):
        return _probe_migs(nvml, handle, index, gpu, own)
    return [replace(gpu, foreign_processes=_count_foreign(nvml, handle, own))]


def probe_nvml_devices(nvml: Any | None = None) -> list[Device]:
    """List this host's GPUs (ids ``gpu:<index>``) and MIG instances (``mig:<gpu>.<slot>``).

    A GPU in MIG mode is represented by its MIG instances only (kind ``"mig"``,
    ``parent_uuid`` and ``index`` of their GPU, class ``"<gpu name> MIG <profile>"``).
    Without pynvml, without a driver, or when ``nvmlInit`` fails, logs one debug
    line and returns ``[]``; a GPU whose queries fail is skipped with a warning. ``nvmlShutdown``
    always follows a successful ``nvmlInit``.

    :param nvml: a module with pynvml's API; default ``pynvml`` (or the fake named
        by ``HWAWARE_FAKE_NVML``).
    Cost: one NVML session, O(GPUs + processes) queries, one process-table scan.
    Thread-safe (NVML sessions are reference counted).
    """
    lib = _load_nvml(nvml)
    if lib is None or not _init(lib):
        return []
    try:
        count = int(lib.nvmlDeviceGetCount())
        own = own_pids()
        devices: list[Device] = []
        for index in range(count):
            try:
                devices.extend(_probe_gpu(lib, index, own))
            except lib.NVMLError as exc:
                _log.warning("skipping gpu:%d: NVML query failed (%s)", index, exc)
        return devices
    except lib.NVMLError as exc:
        _log.warning("NVML failed while listing GPUs (%s); no GPUs listed", exc)
        return []
    finally:
        _shutdown(lib)


def foreign_process_count(
    uuid: str, nvml: Any | None = None, *, ignore_pids: Collection[int] = ()
) -> int:
    """Count processes of others on the GPU or MIG instance ``uuid``, now.

    For live re-checks during a run. Returns 0 when NVML is unavailable.

    :param uuid: a ``GPU-...`` or ``MIG-...`` UUID.
    :param nvml: as for :func:`probe_nvml_devices`.
    :param ignore_pids: more PIDs to treat as ours (e.g. trial processes started
        by another worker of the same study).
    :raises DeviceConfigError: NVML does not know ``uuid``.
    Cost: one NVML session (tens of ms on real drivers) and a process-table scan.
    """
    lib = _load_nvml(nvml)
    if lib is None or not _init(lib):
        return 0
    try:
        try:
            handle = lib.nvmlDeviceGetHandleByUUID(uuid)
        except lib.NVMLError as exc:
            if getattr(exc, "value", None) == getattr(
                lib, "NVML_ERROR_NOT_FOUND", _NVML_ERROR_NOT_FOUND
            ):
                raise DeviceConfigError(
                    f"no GPU or MIG instance with UUID {uuid!r} on this host; "
                    "check the device list against `hwaware devices`"
                ) from exc
            _log.debug("cannot look up %s (%s); assuming no foreign processes", uuid, exc)
            return 0
        return _count_foreign(lib, handle, own_pids() | set(ignore_pids))
    finally:
        _shutdown(lib)
