"""A simulated NVML: run the GPU probe, the CLI and subprocess workers without GPUs.

:class:`FakeNvml` exposes the part of the ``pynvml`` API (nvidia-ml-py) that
:func:`~hwaware_plugins.hardware.probe_nvml_devices` uses, with the same
function names, the same ``NVMLError`` shape (an exception with ``.value``) and
the same constants. Pass one as ``nvml=`` to the probe, or point the environment
variable ``HWAWARE_FAKE_NVML`` at a TOML file: the probe then builds a fresh
fake from that file on every call (so another process can see a foreign process
appear by rewriting the file).

The fake is mutable while in use: append a :class:`FakeProcess` to
``fake.gpus[0].processes`` and the next probe or
:func:`~hwaware_plugins.hardware.foreign_process_count` sees it. Free memory is
``memory_total_mb - memory_used_mb - sum(process memory)``.

TOML format (every key but ``name`` and ``memory_total_mb`` is optional)::

    fail_init = false                   # true: nvmlInit raises "Driver Not Loaded"

    [[gpu]]
    name = "NVIDIA A100-SXM4-40GB"
    memory_total_mb = 40960
    memory_used_mb = 0
    uuid = "GPU-..."                    # default: derived from the index
    compute_capability = [8, 0]
    utilization = 0                     # percent

    [[gpu.process]]                     # processes using this GPU
    pid = 4242
    used_memory_mb = 1024

    [[gpu.mig]]                         # MIG instances: MIG mode is enabled
    profile = "3g.20gb"
    memory_total_mb = 20096
    memory_used_mb = 0
    uuid = "MIG-..."                    # default: derived from the indexes

    [[gpu.mig.process]]
    pid = 4243
    used_memory_mb = 512

Thread-safety: not thread-safe; tests mutate it from one thread.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hwaware_plugins.errors import DeviceConfigError

FAKE_NVML_ENV = "HWAWARE_FAKE_NVML"
"""Environment variable naming a fake-NVML TOML file the default probe uses instead of pynvml."""

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_DEVICE_MIG_DISABLE = 0
NVML_DEVICE_MIG_ENABLE = 1

_MIB = 1024 * 1024
_ERROR_TEXT = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
}


class NVMLError(Exception):
    """The fake's NVML error; ``value`` holds the NVML return code, as in pynvml."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _ERROR_TEXT.get(self.value, f"NVML Error with code {self.value}")


@dataclass
class FakeProcess:
    """A process using a fake GPU: its PID and the device memory it holds (MiB)."""

    pid: int
    used_memory_mb: int = 0


@dataclass
class FakeMig:
    """A MIG instance of a fake GPU (its presence turns MIG mode on for that GPU)."""

    profile: str
    memory_total_mb: int
    memory_used_mb: int = 0
    uuid: str | None = None
    processes: list[FakeProcess] = field(default_factory=list)


@dataclass
class FakeGpu:
    """A fake GPU; lists stay mutable so tests can add processes mid-run."""

    name: str
    memory_total_mb: int
    memory_used_mb: int = 0
    uuid: str | None = None
    compute_capability: tuple[int, int] = (8, 0)
    utilization: int = 0
    processes: list[FakeProcess] = field(default_factory=list)
    mig_instances: list[FakeMig] = field(default_factory=list)


@dataclass(frozen=True)
class _Handle:
    gpu: int
    mig: int | None = None


def _default_gpu_uuid(index: int) -> str:
    return f"GPU-fa4e0000-0000-4000-8000-{index:012d}"


def _default_mig_uuid(gpu: int, mig: int) -> str:
    return f"MIG-fa4e{gpu:04d}-0000-4000-8000-{mig:012d}"


class FakeNvml:
    """A simulated ``pynvml`` module over a list of :class:`FakeGpu`.

    :param gpus: the GPUs, NVML index = position. Missing UUIDs are filled in
        deterministically (``GPU-fa4e...``, ``MIG-fa4e...``).
    :param fail_init: make ``nvmlInit`` raise ``NVMLError`` (no driver).
    :param strings_as_bytes: return names and UUIDs as ``bytes``, as older
        pynvml releases do.

    ``init_calls`` and ``shutdown_calls`` count calls so tests can check that
    every init is paired with a shutdown. Each call costs O(GPUs + processes).
    """

    NVMLError = NVMLError
    NVML_SUCCESS = NVML_SUCCESS
    NVML_ERROR_UNINITIALIZED = NVML_ERROR_UNINITIALIZED
    NVML_ERROR_INVALID_ARGUMENT = NVML_ERROR_INVALID_ARGUMENT
    NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED
    NVML_ERROR_NOT_FOUND = NVML_ERROR_NOT_FOUND
    NVML_ERROR_DRIVER_NOT_LOADED = NVML_ERROR_DRIVER_NOT_LOADED
    NVML_DEVICE_MIG_DISABLE = NVML_DEVICE_MIG_DISABLE
    NVML_DEVICE_MIG_ENABLE = NVML_DEVICE_MIG_ENABLE

    def __init__(
        self,
        gpus: Sequence[FakeGpu] = (),
        *,
        fail_init: bool = False,
        strings_as_bytes: bool = False,
    ) -> None:
        self.gpus = list(gpus)
        self.fail_init = fail_init
        self.strings_as_bytes = strings_as_bytes
        self.init_calls = 0
        self.shutdown_calls = 0
        for i, gpu in enumerate(self.gpus):
            if gpu.uuid is None:
                gpu.uuid = _default_gpu_uuid(i)
            for j, mig in enumerate(gpu.mig_instances):
                if mig.uuid is None:
                    mig.uuid = _default_mig_uuid(i, j)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> FakeNvml:
        """Build a fake from a TOML file in the format of this module's docstring.

        Raises :class:`~hwaware_plugins.errors.DeviceConfigError` naming the file
        when it is missing or malformed.
        """
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise DeviceConfigError(
                f"{path}: cannot read the fake NVML file ({exc.strerror}); "
                f"fix or unset {FAKE_NVML_ENV}"
            ) from exc
        except tomllib.TOMLDecodeError as exc:
            raise DeviceConfigError(f"{path}: malformed fake NVML TOML: {exc}") from exc
        entries = data.get("gpu", [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise DeviceConfigError(f"{path}: fake NVML GPUs must be [[gpu]] tables")
        fail_init = data.get("fail_init", False)
        if not isinstance(fail_init, bool):
            raise DeviceConfigError(f"{path}: fail_init must be true or false, got {fail_init!r}")
        gpus = []
        for number, entry in enumerate(entries, start=1):
            try:
                gpus.append(_gpu_from_mapping(entry))
            except KeyError as exc:
                raise DeviceConfigError(
                    f"{path}: fake NVML [[gpu]] entry {number}: missing key {exc}"
                ) from None
            except (TypeError, ValueError) as exc:
                raise DeviceConfigError(
                    f"{path}: fake NVML [[gpu]] entry {number}: bad value ({exc})"
                ) from None
        uuids = [u for g in gpus for u in (g.uuid, *(m.uuid for m in g.mig_instances)) if u]
        repeated = sorted({u for u in uuids if uuids.count(u) > 1})
        if repeated:
            raise DeviceConfigError(f"{path}: fake NVML uuids repeated: {', '.join(repeated)}")
        return cls(gpus, fail_init=fail_init)

    # -- library lifecycle -------------------------------------------------
    def nvmlInit(self) -> None:
        """Start a session (raises ``NVMLError`` when built with ``fail_init``)."""
        if self.fail_init:
            raise NVMLError(NVML_ERROR_DRIVER_NOT_LOADED)
        self.init_calls += 1

    def nvmlShutdown(self) -> None:
        """End a session started by :meth:`nvmlInit`."""
        self._check_init()
        self.shutdown_calls += 1

    # -- device enumeration ------------------------------------------------
    def nvmlDeviceGetCount(self) -> int:
        """Number of GPUs."""
        self._check_init()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        """Handle of the GPU at ``index``."""
        self._check_init()
        if not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return _Handle(index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> _Handle:
        """Handle of the GPU or MIG instance with that UUID."""
        self._check_init()
        wanted = uuid.decode() if isinstance(uuid, bytes) else uuid
        for i, gpu in enumerate(self.gpus):
            if gpu.uuid == wanted:
                return _Handle(i)
            for j, mig in enumerate(gpu.mig_instances):
                if mig.uuid == wanted:
                    return _Handle(i, j)
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetIndex(self, handle: _Handle) -> int:
        """NVML index of a GPU handle."""
        self._check_init()
        return handle.gpu

    # -- properties --------------------------------------------------------
    def nvmlDeviceGetName(self, handle: _Handle) -> str | bytes:
        """Product name; for MIG ``"<gpu name> MIG <profile>"`` like the real driver."""
        gpu = self._gpu(handle)
        name = gpu.name
        if handle.mig is not None:
            name = f"{gpu.name} MIG {gpu.mig_instances[handle.mig].profile}"
        return self._text(name)

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str | bytes:
        """``GPU-...`` or ``MIG-...`` UUID."""
        gpu = self._gpu(handle)
        uuid = gpu.uuid if handle.mig is None else gpu.mig_instances[handle.mig].uuid
        return self._text(str(uuid))

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle) -> SimpleNamespace:
        """Memory in bytes: ``total``, ``free``, ``used``."""
        gpu = self._gpu(handle)
        if handle.mig is None:
            total, used, procs = gpu.memory_total_mb, gpu.memory_used_mb, gpu.processes
        else:
            mig = gpu.mig_instances[handle.mig]
            total, used, procs = mig.memory_total_mb, mig.memory_used_mb, mig.processes
        used += sum(p.used_memory_mb for p in procs)
        used = min(used, total)
        return SimpleNamespace(total=total * _MIB, used=used * _MIB, free=(total - used) * _MIB)

    def nvmlDeviceGetCudaComputeCapability(self, handle: _Handle) -> tuple[int, int]:
        """CUDA compute capability ``(major, minor)``."""
        return self._gpu(handle).compute_capability

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> SimpleNamespace:
        """Utilization percent (``gpu``, ``memory``); not supported on MIG, as on real drivers."""
        gpu = self._gpu(handle)
        if handle.mig is not None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(gpu=gpu.utilization, memory=0)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle) -> list[SimpleNamespace]:
        """Processes on the device: objects with ``pid`` and ``usedGpuMemory`` (bytes)."""
        gpu = self._gpu(handle)
        procs = gpu.processes if handle.mig is None else gpu.mig_instances[handle.mig].processes
        return [SimpleNamespace(pid=p.pid, usedGpuMemory=p.used_memory_mb * _MIB) for p in procs]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: _Handle) -> list[SimpleNamespace]:
        """Graphics processes: the fake has none."""
        self._gpu(handle)
        return []

    # -- MIG ---------------------------------------------------------------
    def nvmlDeviceGetMigMode(self, handle: _Handle) -> list[int]:
        """``[current, pending]``; raises "Not Supported" on GPUs older than Ampere."""
        gpu = self._gpu(handle)
        if gpu.mig_instances:
            return [NVML_DEVICE_MIG_ENABLE, NVML_DEVICE_MIG_ENABLE]
        if gpu.compute_capability < (8, 0):
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return [NVML_DEVICE_MIG_DISABLE, NVML_DEVICE_MIG_DISABLE]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: _Handle) -> int:
        """How many MIG slots the GPU has (the fake: 7, like an A100)."""
        self._gpu(handle)
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: _Handle, index: int) -> _Handle:
        """Handle of MIG slot ``index``; "Not Found" for empty slots."""
        gpu = self._gpu(handle)
        if not 0 <= index < len(gpu.mig_instances):
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return _Handle(handle.gpu, index)

    # -- helpers -----------------------------------------------------------
    def _check_init(self) -> None:
        if self.init_calls <= self.shutdown_calls:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def _gpu(self, handle: _Handle) -> FakeGpu:
        self._check_init()
        if not isinstance(handle, _Handle) or not 0 <= handle.gpu < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        gpu = self.gpus[handle.gpu]
        if handle.mig is not None and not 0 <= handle.mig < len(gpu.mig_instances):
            raise NVMLError(NVML_ERROR_NOT_FOUND)  # the instance was destroyed
        return gpu

    def _text(self, value: str) -> str | bytes:
        return value.encode() if self.strings_as_bytes else value


def _count(entry: Mapping[str, Any], key: str, default: int | None = None) -> int:
    """``entry[key]`` as an integer >= 0 (``default`` when absent)."""
    value = entry[key] if default is None else entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be an integer >= 0, got {value!r}")
    return value


def _processes(entries: Sequence[Mapping[str, Any]]) -> list[FakeProcess]:
    return [FakeProcess(_count(p, "pid"), _count(p, "used_memory_mb", 0)) for p in entries]


def _gpu_from_mapping(entry: Mapping[str, Any]) -> FakeGpu:
    migs = [
        FakeMig(
            str(m["profile"]),
            _count(m, "memory_total_mb"),
            memory_used_mb=_count(m, "memory_used_mb", 0),
            uuid=m.get("uuid"),
            processes=_processes(m.get("process", [])),
        )
        for m in entry.get("mig", [])
    ]
    major, minor = entry.get("compute_capability", (8, 0))
    return FakeGpu(
        str(entry["name"]),
        _count(entry, "memory_total_mb"),
        memory_used_mb=_count(entry, "memory_used_mb", 0),
        uuid=entry.get("uuid"),
        compute_capability=(int(major), int(minor)),
        utilization=int(entry.get("utilization", 0)),
        processes=_processes(entry.get("process", [])),
        mig_instances=migs,
    )


__all__ = [
    "FAKE_NVML_ENV",
    "FakeGpu",
    "FakeMig",
    "FakeNvml",
    "FakeProcess",
    "NVMLError",
]
