"""The device model shared by probes, pools, schedulers and the simulator."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

DeviceKind = Literal["cpu", "gpu", "mig"]
DEVICE_KINDS: tuple[str, ...] = ("cpu", "gpu", "mig")
SpeedSource = Literal["default", "declared", "measured"]


def this_host() -> str:
    """The host name devices of this machine carry."""
    return socket.gethostname()


@dataclass(frozen=True)
class Device:
    """One compute device a trial can be placed on.

    :param id: unique within an inventory, e.g. ``"node-a/gpu:0"`` or ``"cpu"``.
    :param kind: ``"cpu"``, ``"gpu"`` or ``"mig"`` (a MIG instance of a GPU).
    :param name: the product name, e.g. ``"NVIDIA A100-SXM4-40GB"``.
    :param uuid: the NVML UUID (``GPU-...`` or ``MIG-...``) used for pinning;
        ``None`` for CPUs and declared devices without one.
    :param memory_total_mb: device memory in MiB (host memory for a CPU).
    :param memory_free_mb: free memory in MiB when probed.
    :param compute_capability: CUDA compute capability, e.g. ``(8, 0)``.
    :param host: the host the device belongs to.
    :param speed: speed relative to the reference device (1.0), measured or declared.
    :param device_class: the group schedulers treat as interchangeable
        (default: the name).
    :param foreign_processes: number of processes of other users/jobs seen on it.
    :param index: the NVML index (GPUs), or ``None``.
    :param parent_uuid: for a MIG instance, the UUID of its GPU.
    :param cores: CPU cores (for CPU devices), used for affinity pinning.
    :param slots: how many trials may run on it at once when leased exclusively
        (1 for GPUs; CPUs may expose several).
    :param speedup: speed per workload family (overrides ``speed`` for that family).
    :param utilization: GPU utilization percent when probed, or ``None``.
    :param speed_source: where ``speed`` came from: ``"default"`` (nobody set it),
        ``"declared"`` (a declared-device file; calibration leaves it alone) or
        ``"measured"`` (the speed probe).
    """

    id: str
    kind: DeviceKind
    name: str
    uuid: str | None = None
    memory_total_mb: int | None = None
    memory_free_mb: int | None = None
    compute_capability: tuple[int, int] | None = None
    host: str = field(default_factory=this_host)
    speed: float = 1.0
    device_class: str = ""
    foreign_processes: int = 0
    index: int | None = None
    parent_uuid: str | None = None
    cores: int | None = None
    slots: int = 1
    speedup: Mapping[str, float] = field(default_factory=dict)
    utilization: float | None = None
    speed_source: SpeedSource = "default"

    def __post_init__(self) -> None:
        if not self.device_class:
            object.__setattr__(self, "device_class", self.name)

    @property
    def is_accelerator(self) -> bool:
        """True for GPUs and MIG instances."""
        return self.kind in ("gpu", "mig")

    @property
    def busy_with_foreign_processes(self) -> bool:
        """True when processes outside this study were using the device at probe time."""
        return self.foreign_processes > 0

    def speed_for(self, family: str | None) -> float:
        """Relative speed for a workload family: its ``speedup`` entry, else ``speed``."""
        if family is not None and family in self.speedup:
            return float(self.speedup[family])
        return self.speed

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the shape ``hwaware devices --json`` prints)."""
        data = asdict(self)
        data["speedup"] = dict(self.speedup)
        if self.compute_capability is not None:
            data["compute_capability"] = list(self.compute_capability)
        return data
