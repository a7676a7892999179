"""Pinning a trial to its device: the environment a child needs and CPU affinity.

GPUs are pinned through ``CUDA_VISIBLE_DEVICES``, which CUDA reads once, when it
initialises; the variables must therefore be in place before the child imports
anything that touches CUDA. CPU slots are pinned through thread-count variables
and ``os.sched_setaffinity``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from hwaware_plugins.errors import ConfigError, HwawareError
from hwaware_plugins.hardware._cores import capped_thread_count, thread_count_value
from hwaware_plugins.hardware._device import Device, this_host

THREAD_COUNT_VARIABLES: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
)
"""Variables set to a CPU slot's thread count so BLAS/OpenMP pools match the slot.

A positive count the user already set in the environment is never raised."""


class PinningError(HwawareError, RuntimeError):
    """Pinning cannot take effect in this process (CUDA already initialised, bad cores)."""


def cuda_visible_value(device: Device) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` value selecting ``device``: its UUID, else its index.

    :raises ConfigError: an accelerator with neither UUID nor index.
    """
    if device.uuid:
        return device.uuid
    if device.index is not None:
        return str(device.index)
    if device.kind == "mig":
        raise ConfigError(
            f"device {device.id!r} (mig) has neither uuid nor index, so it cannot be pinned; "
            "declare its uuid (MIG-..., from `nvidia-smi -L`)"
        )
    raise ConfigError(
        f"device {device.id!r} ({device.kind}) has neither uuid nor index, so it cannot be "
        "pinned; declare its uuid (GPU-...) or index"
    )


def pinning_env(
    device: Device,
    *,
    cores: Sequence[int] | None = None,
    threads: int | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment that pins a child process to ``device``.

    GPU or MIG: ``CUDA_VISIBLE_DEVICES`` is the device UUID (the MIG UUID for a
    MIG instance; the index when no UUID is known) and ``CUDA_DEVICE_ORDER`` is
    ``PCI_BUS_ID``; empty for another host's GPU simulated on this one (as
    ``torch_device_for`` refuses it). CPU: ``CUDA_VISIBLE_DEVICES`` is empty (no GPU is visible)
    and the thread-count variables (:data:`THREAD_COUNT_VARIABLES`) are
    ``threads`` (else the number of ``cores``, else ``device.cores``; left as in
    ``base`` when none is known), but never above a positive count ``base``
    already has (a user's ``OMP_NUM_THREADS=1`` stays 1). Always:
    ``HWAWARE_DEVICE_ID``, ``HWAWARE_DEVICE_CLASS`` and ``HWAWARE_DEVICE_KIND``.

    :param cores: the CPU core ids of the slot (CPU devices only).
    :param threads: the slot's thread count (its share of the cores; CPU devices only).
    :param base: the environment to start from; ``None`` means a copy of
        ``os.environ`` (pass ``{}`` to get only the pinning variables).
    Cost: a dict copy. Pure apart from reading ``os.environ`` when ``base`` is ``None``.

    :raises ConfigError: an accelerator that cannot be addressed, an empty ``cores``
        or ``threads`` below 1.
    """
    env = dict(os.environ if base is None else base)
    if device.is_accelerator and device.host != this_host():
        # Another host's GPU simulated here (``remote_devices = "simulate"``): its index
        # or uuid would name one of this machine's GPUs, so none is visible.
        env["CUDA_VISIBLE_DEVICES"] = ""
    elif device.is_accelerator:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible_value(device)
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    else:
        env["CUDA_VISIBLE_DEVICES"] = ""
        if cores is not None and len(cores) == 0:
            raise ConfigError(
                f"empty core list for CPU device {device.id!r}; give at least one core"
            )
        if threads is not None and (isinstance(threads, bool) or threads < 1):
            raise ConfigError(f"threads must be at least 1 for CPU device {device.id!r}")
        count = threads if threads is not None else len(cores) if cores is not None else None
        count = device.cores if count is None else count
        if count is not None:
            for name in THREAD_COUNT_VARIABLES:
                env[name] = str(capped_thread_count(count, env.get(name)))
    env["HWAWARE_DEVICE_ID"] = device.id
    env["HWAWARE_DEVICE_CLASS"] = device.device_class
    env["HWAWARE_DEVICE_KIND"] = device.kind
    return env


def cuda_initialized() -> bool:
    """True when ``torch`` is imported in this process and has initialised CUDA.

    Never imports torch itself. Cost: a dictionary look-up and one call.
    """
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is None:
        return False
    try:
        return bool(cuda.is_initialized())
    except Exception:  # a half-imported or stubbed torch: it cannot have initialised CUDA
        return False


def _size_torch_threads(count: str | None) -> None:
    """Match an already imported torch's intra-op threads to ``count`` (torch reads
    ``OMP_NUM_THREADS`` itself when imported later). Never imports torch."""
    torch = sys.modules.get("torch")
    setter = getattr(torch, "set_num_threads", None)
    threads = thread_count_value(count)
    if setter is None or threads is None:
        return
    try:
        setter(threads)
    except Exception:  # a stubbed or half-imported torch: nothing to size
        return


def apply_pinning_in_child(
    env: Mapping[str, str], cpu_affinity: Sequence[int] | None = None
) -> None:
    """Pin the current process: update ``os.environ`` from ``env`` and set CPU affinity.

    Call it first thing in a freshly forked or spawned child, before anything
    imports CUDA. A torch already imported gets ``OMP_NUM_THREADS`` intra-op
    threads (``torch.set_num_threads``). Affinity is set with ``os.sched_setaffinity`` where the
    platform has it and silently skipped elsewhere. Not thread-safe: call it
    while the child is still single-threaded.

    :raises PinningError: CUDA is already initialised in this process and
        ``env`` would change ``CUDA_VISIBLE_DEVICES`` (the change could not take
        effect), or the kernel refused the affinity.
    :raises ConfigError: an empty ``cpu_affinity``.
    """
    wanted = env.get("CUDA_VISIBLE_DEVICES")
    if (
        wanted is not None
        and wanted != os.environ.get("CUDA_VISIBLE_DEVICES")
        and cuda_initialized()
    ):
        raise PinningError(
            f"CUDA is already initialised in process {os.getpid()}, so CUDA_VISIBLE_DEVICES="
            f"{wanted!r} cannot take effect; pin the worker before it imports or uses torch.cuda"
        )
    if cpu_affinity is not None and len(cpu_affinity) == 0:
        raise ConfigError("empty cpu_affinity; give at least one core id or None")
    os.environ.update(env)
    _size_torch_threads(env.get(THREAD_COUNT_VARIABLES[0]))
    if cpu_affinity is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, list(cpu_affinity))
        except OSError as exc:
            raise PinningError(
                f"cannot pin process {os.getpid()} to cores {list(cpu_affinity)}: {exc}; "
                "use core ids from os.sched_getaffinity(0)"
            ) from exc
