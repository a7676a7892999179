"""Which device a running trial holds: :func:`device_for` and :func:`torch_device_for`.

The sampler registers each lease here, keyed by the storage object and the
trial id, for as long as the trial runs in this process.
"""

from __future__ import annotations

import os
import re
import threading
from typing import TYPE_CHECKING, Any

from hwaware_plugins._forksafe import fork_safe
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware import Device, this_host

if TYPE_CHECKING:
    import optuna

_lock = fork_safe(threading.Lock())
_devices: dict[tuple[int, int], Device] = {}


def register(storage: object, trial_id: int, device: Device) -> None:
    """Remember that trial ``trial_id`` of ``storage`` runs on ``device`` (sampler use)."""
    with _lock:
        _devices[(id(storage), trial_id)] = device


def unregister(storage: object, trial_id: int) -> None:
    """Forget the trial's device (sampler use; no error if unknown)."""
    with _lock:
        _devices.pop((id(storage), trial_id), None)


def device_for(trial: optuna.trial.Trial) -> Device:
    """The :class:`~hwaware_plugins.hardware.Device` the running trial was leased.

    Works for :class:`optuna.trial.Trial` objects of a study whose sampler is a
    :class:`~hwaware_optuna.HardwareAwareSampler`, in the process that asked for
    the trial, until the trial is told. Cost: one dict lookup. Thread-safe.

    :raises ConfigError: the trial holds no lease in this process (other sampler,
        finished trial, or a ``FrozenTrial``).
    """
    storage = getattr(trial, "storage", None)
    trial_id = getattr(trial, "_trial_id", None)
    with _lock:
        device = _devices.get((id(storage), trial_id)) if isinstance(trial_id, int) else None
    if device is None:
        number = getattr(trial, "number", "?")
        raise ConfigError(
            f"trial {number} holds no device lease in this process; device_for needs a running "
            "optuna Trial of a study whose sampler is hwaware_optuna.HardwareAwareSampler"
        )
    return device


def cuda_ordinal(device: Device, visible: str | None) -> int:
    """The CUDA ordinal of a GPU in a process whose ``CUDA_VISIBLE_DEVICES`` is ``visible``.

    Unset: the device's physical index (``Device.index``; for declared GPUs
    without one, the number ending its id, ``"node/gpu:2"`` -> 2). Set: the
    device's position in that list, matched by UUID or index (a MIG instance:
    by UUID only). Pure.

    :raises ConfigError: a MIG instance this process is not pinned to,
        no index known, or the device is not visible to this process.
    """
    if device.kind == "mig":
        pinned = [entry.strip() for entry in (visible or "").split(",") if entry.strip()]
        if device.uuid is not None and device.uuid in pinned:
            return pinned.index(device.uuid)
        raise ConfigError(
            f"device {device.id} is a MIG instance: a process reaches it only when pinned with "
            "CUDA_VISIBLE_DEVICES before CUDA starts; run trials through an hwaware executor"
        )
    index = device.index
    if index is None:
        match = re.search(r"gpu:(\d+)$", device.id)
        index = int(match.group(1)) if match else None
    if visible is None:
        if index is None:
            raise ConfigError(f"device {device.id} has no CUDA index; probe it or declare one")
        return index
    entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
    for position, entry in enumerate(entries):
        if entry in (device.uuid, str(index)):
            return position
    raise ConfigError(
        f"device {device.id} is not visible to this process (CUDA_VISIBLE_DEVICES={visible!r})"
    )


def torch_device_for(trial: optuna.trial.Trial) -> Any:
    """The ``torch.device`` of the running trial's lease: ``"cpu"`` or ``"cuda:<n>"``.

    In-process trials (``study.optimize(n_jobs=...)``) share one process, and
    ``CUDA_VISIBLE_DEVICES`` cannot differ between threads, so a GPU maps to
    its physical index (``cuda:<Device.index>``; set
    ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so CUDA numbers GPUs as NVML does). In a
    process pinned to one GPU (``CUDA_VISIBLE_DEVICES`` set, e.g. by an hwaware
    executor) it is that GPU's position in the visible list, usually
    ``cuda:0``. Cost: a dict lookup (torch is imported on first use).

    A GPU of another host (a declared file leased with ``remote_devices =
    "simulate"``) has no CUDA device here: it raises rather than name a local GPU.

    :raises ConfigError: no lease (see :func:`device_for`), PyTorch missing, a
        MIG instance in-process, a GPU of another host, or a GPU this process cannot see.
    """
    device = device_for(trial)
    if device.is_accelerator and device.host != this_host():
        raise ConfigError(
            f"device {device.id} is on host {device.host!r}, not this host {this_host()!r}, so "
            "no CUDA device here is it; run the trial on that host (`hwaware worker` there), "
            "or use device_for(trial) when simulating remote devices"
        )
    try:
        import torch
    except ImportError as exc:
        raise ConfigError("torch_device_for needs PyTorch: pip install torch") from exc
    if not device.is_accelerator:
        return torch.device("cpu")
    ordinal = cuda_ordinal(device, os.environ.get("CUDA_VISIBLE_DEVICES"))
    return torch.device(f"cuda:{ordinal}")
