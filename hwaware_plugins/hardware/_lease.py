"""The handle a caller gets from ``DevicePool.acquire``: a held device slot."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import TracebackType

from hwaware_plugins.hardware._device import Device
from hwaware_plugins.hardware._leasefile import LeaseRecord
from hwaware_plugins.hardware._pinning import pinning_env


class Lease:
    """A device slot held until :meth:`release` (or the end of a ``with`` block).

    Use it as a context manager so the slot comes back on exceptions too::

        with pool.acquire(memory_mb=4000, label=str(trial.number)) as lease:
            subprocess.run(cmd, env=lease.env(), check=True)

    Thread-safe: :meth:`release` may be called from any thread, any number of
    times; only the first call frees the slot. A lease also ends when its holder
    process dies (the pool reclaims it) or when an executor calls
    ``DevicePool.release_all_of_pid``; :meth:`release` is then a no-op.

    :param record: the stored record of the lease.
    :param device: the leased device.
    :param cores: CPU core ids of the slot (CPU slots), else ``None``.
    :param releaser: called once, by the first :meth:`release`.
    :param threads: threads the slot may use (a CPU slot's share of the cores), else ``None``.
    """

    def __init__(
        self,
        record: LeaseRecord,
        *,
        device: Device,
        cores: tuple[int, ...] | None,
        releaser: Callable[[Lease], None],
        threads: int | None = None,
    ) -> None:
        self.record = record
        self.device = device
        self._cores = cores
        self._threads = threads
        self._releaser = releaser
        self._lock = threading.Lock()
        self._released = False

    @property
    def lease_id(self) -> str:
        """Unique id of the lease (also ``HWAWARE_LEASE_ID`` in :meth:`env`)."""
        return self.record.lease_id

    @property
    def slot_id(self) -> str:
        """The slot held, e.g. ``"gpu:0#0"``; memory-packed leases share ``"<device>#mem"``."""
        return self.record.slot_id

    @property
    def memory_mb(self) -> float | None:
        """The declared memory need, or ``None`` when the lease takes the whole device."""
        return self.record.memory_mb

    @property
    def label(self) -> str | None:
        """The caller's label, e.g. a trial id."""
        return self.record.label

    @property
    def cpu_affinity(self) -> list[int] | None:
        """Core ids a CPU slot's process should be pinned to; ``None`` for GPU/MIG leases."""
        return None if self._cores is None else list(self._cores)

    @property
    def threads(self) -> int | None:
        """Threads a CPU slot's process should use (its share of the cores); ``None`` for GPUs."""
        return self._threads

    @property
    def released(self) -> bool:
        """True once released through this handle, or ended by the pool that issued it."""
        return self._released

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment pinning a child process to this lease's device and cores.

        :func:`~hwaware_plugins.hardware._pinning.pinning_env` plus
        ``HWAWARE_LEASE_ID``; a CPU slot's thread counts are its share of the
        cores, never above a count already set in ``base``. ``base`` defaults to
        a copy of ``os.environ`` (``{}`` gives only the pinning variables).
        Cost: a dict copy.
        """
        env = pinning_env(self.device, cores=self._cores, threads=self._threads, base=base)
        env["HWAWARE_LEASE_ID"] = self.lease_id
        return env

    def release(self) -> None:
        """Give the slot back; idempotent and thread-safe. Cost: one locked state update."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._releaser(self)

    def _mark_ended(self) -> None:
        """Record that the pool ended this lease without :meth:`release` (reclaimed)."""
        with self._lock:
            self._released = True

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return (
            f"Lease({self.lease_id[:8]}, slot={self.slot_id!r}, "
            f"memory_mb={self.memory_mb}, {state})"
        )
