"""Which device the running task holds: :func:`current_device`, in threads and in workers."""

from __future__ import annotations

import contextvars
import os
from dataclasses import dataclass
from typing import Any

_CURRENT: contextvars.ContextVar[RunningOn | None] = contextvars.ContextVar(
    "hwaware_running_on", default=None
)


@dataclass(frozen=True)
class RunningOn:
    """The lease a task runs on, as the task sees it.

    :param device_id: the leased device's id (``HWAWARE_DEVICE_ID``).
    :param device_class: its class (``HWAWARE_DEVICE_CLASS``).
    :param device_kind: ``"gpu"``, ``"mig"`` or ``"cpu"`` (``HWAWARE_DEVICE_KIND``).
    :param slot_id: the pool slot (``HWAWARE_SLOT_ID``).
    :param lease_id: the lease (``HWAWARE_LEASE_ID``).
    :param label: the task's label (``HWAWARE_TASK_LABEL``).
    :param cuda_index: the GPU's physical index when known (in a thread, use
        ``f"cuda:{cuda_index}"`` with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``); in a
        pinned worker process the leased GPU is ``cuda:0`` instead. ``None`` for a
        MIG instance, which a thread cannot address by index.
    :param cpu_cores: the CPU cores of a CPU slot, else ``None``.
    :param in_thread: True in a :class:`~hwaware_plugins.executors.ThreadExecutor`
        thread (no ``CUDA_VISIBLE_DEVICES`` pinning), False in a worker process.
    :param device: the ``Device`` itself (threads only; ``None`` in a worker process).
    """

    device_id: str | None
    device_class: str | None
    device_kind: str | None
    slot_id: str | None
    lease_id: str | None
    label: str | None
    cuda_index: int | None = None
    cpu_cores: tuple[int, ...] | None = None
    in_thread: bool = False
    device: Any = None


def running_on_lease(lease: Any, label: str) -> RunningOn:
    """What a thread running ``label`` on ``lease`` is told. Pure."""
    device = lease.device
    cores = getattr(lease, "cpu_affinity", None)
    return RunningOn(
        device_id=str(device.id), device_class=device.device_class, device_kind=device.kind,
        slot_id=str(lease.slot_id), lease_id=str(lease.lease_id), label=label,
        # A MIG instance has no CUDA index of its own (its parent's index would name the
        # whole GPU): only its uuid in CUDA_VISIBLE_DEVICES reaches it.
        cuda_index=device.index if device.kind == "gpu" else None,
        cpu_cores=None if cores is None else tuple(cores), in_thread=True, device=device,
    )


def set_running_on(value: RunningOn | None) -> contextvars.Token[RunningOn | None]:
    """Make ``value`` what :func:`current_device` returns in this thread (and context)."""
    return _CURRENT.set(value)


def reset_running_on(token: contextvars.Token[RunningOn | None]) -> None:
    """Undo :func:`set_running_on`."""
    _CURRENT.reset(token)


def current_device() -> RunningOn | None:
    """The device slot the calling task holds, or ``None`` outside an hwaware task.

    In a :class:`~hwaware_plugins.executors.ThreadExecutor` thread it describes
    that thread's lease (including the ``Device``); in a worker process of
    :class:`~hwaware_plugins.executors.LocalExecutor` it is read from the
    ``HWAWARE_*`` variables the worker was pinned with. Objectives can thus use
    it under either executor, e.g. to pick ``torch.device``.

    Cost: a context-variable lookup, else a few environment reads.
    """
    value = _CURRENT.get()
    if value is not None:
        return value
    env = os.environ
    if "HWAWARE_DEVICE_ID" not in env or "HWAWARE_LEASE_ID" not in env:
        return None
    cores: tuple[int, ...] | None = None
    if env.get("HWAWARE_DEVICE_KIND") == "cpu" and hasattr(os, "sched_getaffinity"):
        cores = tuple(sorted(os.sched_getaffinity(0)))
    return RunningOn(
        device_id=env.get("HWAWARE_DEVICE_ID"), device_class=env.get("HWAWARE_DEVICE_CLASS"),
        device_kind=env.get("HWAWARE_DEVICE_KIND"), slot_id=env.get("HWAWARE_SLOT_ID"),
        lease_id=env.get("HWAWARE_LEASE_ID"), label=env.get("HWAWARE_TASK_LABEL"),
        cpu_cores=cores,
    )
