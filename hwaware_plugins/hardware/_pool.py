"""The device pool: leases of device slots, safe across threads and processes of a node."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from types import TracebackType

from hwaware_plugins.errors import HwawareError, LeaseTimeoutError, NoSuitableDeviceError
from hwaware_plugins.events import LeaseReleased, emit
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.hardware._lease import Lease
from hwaware_plugins.hardware._leasefile import (
    LeaseRecord,
    drop_dead_holders,
    process_create_time,
    process_start_ticks,
)
from hwaware_plugins.hardware._pool_config import (
    PoolSetup,
    check_request,
    cpu_courtesy_setting,
    prepare_pool,
)
from hwaware_plugins.hardware._pool_slots import (
    DeviceCapacity,
    capacity_of,
    choose_slot,
    counted_records,
    holdings,
    unsuitable_reason,
)

_log = logging.getLogger(__name__)

_FIRST_POLL_S = 0.002
_MAX_POLL_S = 0.05

_FAMILY = uuid.uuid4().hex
"""This process family's token: kept by forked children, new in every fresh interpreter."""


class DevicePool:
    """Leases device slots to trials, exclusively or packed by GPU memory.

    Several ``DevicePool`` objects with the same ``name`` and ``state_dir`` (in
    one process or in many processes of a node) share one set of leases: the
    active leases live in ``<state_dir>/<name>.json``, changed only under an
    ``flock`` on ``<name>.lock``. Every method is thread-safe and process-safe.
    Leases of processes that died (or whose PID was reused) are reclaimed on the
    next acquire or inspection, with a ``hwaware_lease_released`` event. A
    forked child may keep using an inherited pool: its leases carry its own PID,
    and :meth:`close` there releases only leases the child took.

    Courtesy to other processes applies to GPUs and MIG instances: a device
    used by foreign processes is skipped (``skip_foreign_processes``), and
    leases other processes hold on it count. CPU slots get it only with
    ``cpu_courtesy=True``: by default other processes' load never stops a CPU
    slot, and CPU-slot leases are shared only by this process and the children
    it forks (threads, forked workers), not by unrelated processes that use the
    same pool name (another study or benchmark on the node).

    Arguments are stored as given and validated on first use.

    :param devices: the devices of this node the pool hands out.
    :param name: pool name; pools of the same name share leases.
    :param packing: ``"exclusive"`` (each device has ``device.slots`` slots, one
        lease each) or ``"memory"`` (a GPU/MIG holds several leases while their
        ``memory_mb`` sum stays within its budget; CPU slots stay exclusive).
    :param skip_foreign_processes: never lease a device used by foreign processes.
    :param foreign_process_check: returns the live count of foreign processes on
        a device; called on every acquire attempt (else ``device.foreign_processes``).
    :param memory_fraction: share of a device's free (else total) memory leases
        may use, in (0, 1].
    :param state_dir: folder of the state files (default ``$XDG_RUNTIME_DIR/hwaware``,
        else ``/tmp/hwaware-<uid>``, created with mode 0700).
    :param cpu_courtesy: also skip CPU devices that ``foreign_process_check`` (or
        ``Device.foreign_processes``) reports busy, and let CPU-slot leases of
        unrelated processes of this pool name block slots. ``None`` reads
        ``HWAWARE_CPU_COURTESY`` (``1`` turns it on); default off.
    """

    def __init__(
        self,
        devices: Sequence[Device],
        *,
        name: str = "default",
        packing: str = "exclusive",
        skip_foreign_processes: bool = True,
        foreign_process_check: Callable[[Device], int] | None = None,
        memory_fraction: float = 0.95,
        state_dir: str | os.PathLike[str] | None = None,
        cpu_courtesy: bool | None = None,
    ) -> None:
        self.devices = devices
        self.name = name
        self.packing = packing
        self.skip_foreign_processes = skip_foreign_processes
        self.foreign_process_check = foreign_process_check
        self.memory_fraction = memory_fraction
        self.state_dir = state_dir
        self.cpu_courtesy = cpu_courtesy_setting(cpu_courtesy)
        self._setup_lock = threading.Lock()
        self._setup: PoolSetup | None = None
        self._held: dict[str, Lease] = {}
        self._held_lock = threading.Lock()
        self._wakeup = threading.Condition()
        self._closed = False
        self._jitter = random.Random()
        self._own: tuple[int, float, int | None] = (-1, 0.0, None)
        _LIVE_POOLS.add(self)

    def _after_fork_in_child(self) -> None:
        self._setup_lock = threading.Lock()
        self._held_lock = threading.Lock()
        self._wakeup = threading.Condition()

    # -- public API -------------------------------------------------------------------------

    def acquire(
        self,
        *,
        memory_mb: float | None = None,
        device_filter: Callable[[Device], bool] | None = None,
        prefer: Sequence[str] | None = None,
        timeout: float | None = None,
        label: str | None = None,
    ) -> Lease:
        """Block until a slot fits the request, lease it and return the :class:`Lease`.

        :param memory_mb: the trial's memory need in MiB; ``None`` takes a whole device.
        :param device_filter: only devices for which it returns True are considered.
        :param prefer: device classes (or kinds, or ids) in order of preference;
            other devices come after them. Without it the fastest device wins.
        :param timeout: seconds to wait; ``None`` waits for ever, ``0`` tries once.
        :param label: free text stored with the lease (e.g. the trial id).
        Cost: one locked state update per attempt; waiting polls with growing
        sleeps (2 ms to 50 ms) and wakes early on releases in this process.

        :raises NoSuitableDeviceError: no device could ever take it; names why for each.
        :raises LeaseTimeoutError: ``timeout`` passed with every fitting slot busy.
        :raises ConfigError: invalid arguments, or the pool's configuration.
        """
        check_request(memory_mb, prefer, timeout, label)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _FIRST_POLL_S
        while True:
            lease = self._attempt(memory_mb, device_filter, prefer, label)
            if lease is not None:
                return lease
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise LeaseTimeoutError(
                    f"no slot of pool {self.name!r} fitting memory_mb={memory_mb} became free "
                    f"within {timeout} s ({len(self.active_leases())} leases active); raise the "
                    "timeout, add devices or release leases"
                )
            pause = delay * self._jitter.uniform(0.5, 1.0)
            with self._wakeup:
                self._wakeup.wait(pause if deadline is None else min(pause, deadline - now))
            delay = min(delay * 2, _MAX_POLL_S)

    def try_acquire(
        self,
        *,
        memory_mb: float | None = None,
        device_filter: Callable[[Device], bool] | None = None,
        prefer: Sequence[str] | None = None,
        label: str | None = None,
    ) -> Lease | None:
        """Lease a fitting slot if one is free now, else return ``None`` (never waits).

        Same arguments and errors as :meth:`acquire` (``NoSuitableDeviceError``
        still raises: it means waiting could never help).
        """
        check_request(memory_mb, prefer, None, label)
        return self._attempt(memory_mb, device_filter, prefer, label)

    def check(self) -> None:
        """Validate the pool's options, devices and lease state file now instead of at the
        first lease.

        Cost: what the first lease would pay anyway: a few checks, one ``mkdir``/``stat``
        of the state folder and one locked update of the state file (which, as every
        lease does, releases the leases of dead holders).

        :raises ConfigError: the first invalid option (``DeviceConfigError`` for the
            devices), or a state file that cannot be read (corrupt, not ours).
        """
        self._ready()
        self.active_leases()

    def active_leases(self) -> list[LeaseRecord]:
        """The active leases of this pool name across all processes, oldest first.

        Reclaims dead holders first. Cost: one locked state update.
        """
        setup = self._ready()
        with setup.store.transaction() as records:
            dead = drop_dead_holders(records)
            current = sorted(records, key=lambda r: r.acquired_at)
        self._announce(dead, reclaimed=True)
        return current

    def reclaim_dead(self) -> int:
        """Release the leases of holders that died; return how many. Cost: one locked update."""
        setup = self._ready()
        with setup.store.transaction() as records:
            dead = drop_dead_holders(records)
        self._announce(dead, reclaimed=True)
        return len(dead)

    def release_all_of_pid(self, pid: int) -> int:
        """Release every lease held by process ``pid`` (alive or not); return how many.

        For executors whose worker crashed or was killed. Each release emits a
        ``hwaware_lease_released`` event with ``reclaimed=True``.
        """
        setup = self._ready()
        with setup.store.transaction() as records:
            ended = [r for r in records if r.pid == pid]
            records[:] = [r for r in records if r.pid != pid]
        self._announce(ended, reclaimed=True)
        return len(ended)

    def free_capacity(self) -> dict[str, DeviceCapacity]:
        """Per device (by id, in pool order): slots and memory still free, and usability.

        Reclaims dead holders first; calls ``foreign_process_check`` per device.
        """
        setup = self._ready()
        usable = self._usable_fn(setup)
        with setup.store.transaction() as records:
            dead = drop_dead_holders(records)
            held = holdings(setup.slots, self._counted(setup, records))
        self._announce(dead, reclaimed=True)
        return capacity_of(setup.devices, setup.slots, held, usable=usable)

    def close(self) -> None:
        """Release the leases this object handed out in this process; refuse new ones.

        Idempotent. Leases of other pool objects or processes are untouched.
        """
        self._closed = True
        with self._held_lock:
            mine = [lease for lease in self._held.values() if lease.record.pid == os.getpid()]
        for lease in mine:
            lease.release()

    def __enter__(self) -> DevicePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"DevicePool(name={self.name!r}, packing={self.packing!r}, devices={len(self.devices)})"
        )

    # -- internals ------------------------------------------------------------------------

    def _ready(self) -> PoolSetup:
        with self._setup_lock:
            if self._setup is None:
                self._setup = self._validated()
            return self._setup

    def _validated(self) -> PoolSetup:
        return prepare_pool(
            self.devices,
            name=self.name,
            packing=self.packing,
            memory_fraction=self.memory_fraction,
            foreign_process_check=self.foreign_process_check,
            state_dir=self.state_dir,
        )

    def _foreign_count(self, device: Device) -> int:
        if not self.skip_foreign_processes or (device.kind == "cpu" and not self.cpu_courtesy):
            return 0
        if self.foreign_process_check is None:
            return device.foreign_processes
        try:
            return int(self.foreign_process_check(device))
        except Exception:
            _log.warning(
                "foreign_process_check failed for %s; using the probed count",
                device.id,
                exc_info=True,
            )
            return device.foreign_processes

    def _unsuitable(
        self,
        setup: PoolSetup,
        memory_mb: float | None,
        device_filter: Callable[[Device], bool] | None,
    ) -> dict[str, str | None]:
        reasons: dict[str, str | None] = {}
        for slot in setup.slots:
            device = slot.device
            if device.id in reasons:
                continue
            excluded = device_filter is not None and not device_filter(device)
            reasons[device.id] = unsuitable_reason(
                device,
                memory_mb=memory_mb,
                budget_mb=slot.budget_mb,
                excluded=excluded,
                foreign=0 if excluded else self._foreign_count(device),
            )
        return reasons

    def _identity(self) -> tuple[int, float, int | None]:
        pid = os.getpid()
        if self._own[0] != pid:
            self._own = (pid, process_create_time(pid) or 0.0, process_start_ticks(pid))
        return self._own

    def _counted(self, setup: PoolSetup, records: list[LeaseRecord]) -> list[LeaseRecord]:
        return counted_records(
            records, setup.devices, family=_FAMILY, cpu_courtesy=self.cpu_courtesy
        )

    def _usable_fn(self, setup: PoolSetup) -> Callable[[Device], bool]:
        busy = {d.id for d in setup.devices if self._foreign_count(d) > 0}
        return lambda device: device.id not in busy

    def _attempt(
        self,
        memory_mb: float | None,
        device_filter: Callable[[Device], bool] | None,
        prefer: Sequence[str] | None,
        label: str | None,
    ) -> Lease | None:
        setup = self._ready()
        if self._closed:
            raise HwawareError(f"pool {self.name!r} is closed; create a new DevicePool")
        reasons = self._unsuitable(setup, memory_mb, device_filter)
        if all(reason is not None for reason in reasons.values()):
            listed = "; ".join(f"{did}: {why}" for did, why in reasons.items())
            raise NoSuitableDeviceError(
                f"no device of pool {self.name!r} can ever take this lease ({listed}); lower "
                "memory_mb, widen device_filter or set skip_foreign_processes=False"
            )
        usable = lambda device: reasons[device.id] is None  # noqa: E731
        snapshot = setup.store.peek()
        if snapshot is not None:
            # Waiters poll this lock-free view and take the file lock only when a
            # slot looks free, so a crowd of waiters does not convoy on the lock.
            drop_dead_holders(snapshot)
            held = holdings(setup.slots, self._counted(setup, snapshot))
            if (
                choose_slot(setup.slots, held, memory_mb=memory_mb, prefer=prefer, usable=usable)
                is None
            ):
                return None
        pid, started, ticks = self._identity()
        with setup.store.transaction() as records:
            dead = drop_dead_holders(records)
            slot = choose_slot(
                setup.slots,
                holdings(setup.slots, self._counted(setup, records)),
                memory_mb=memory_mb,
                prefer=prefer,
                usable=usable,
            )
            record = None
            if slot is not None:
                record = LeaseRecord(
                    lease_id=uuid.uuid4().hex,
                    slot_id=slot.slot_id,
                    device_id=slot.device.id,
                    memory_mb=None if memory_mb is None else float(memory_mb),
                    pid=pid,
                    pid_create_time=started,
                    thread_id=threading.get_ident(),
                    label=label,
                    acquired_at=time.time(),
                    pid_start_ticks=ticks,
                    family=_FAMILY,
                )
                records.append(record)
        self._announce(dead, reclaimed=True)
        if slot is None or record is None:
            return None
        lease = Lease(record, device=slot.device, cores=slot.cores, threads=slot.threads,
                      releaser=self._release)
        with self._held_lock:
            self._held[record.lease_id] = lease
        return lease

    def _release(self, lease: Lease) -> None:
        setup = self._ready()
        with setup.store.transaction() as records:
            ended = [r for r in records if r.lease_id == lease.lease_id]
            if ended:
                records[:] = [r for r in records if r.lease_id != lease.lease_id]
        with self._held_lock:
            self._held.pop(lease.lease_id, None)
        with self._wakeup:
            self._wakeup.notify_all()
        self._announce(ended, reclaimed=False)

    def _announce(self, ended: Sequence[LeaseRecord], *, reclaimed: bool) -> None:
        if not ended:
            return
        if reclaimed:
            with self._held_lock:
                for record in ended:
                    handle = self._held.pop(record.lease_id, None)
                    if handle is not None:
                        handle._mark_ended()
            with self._wakeup:
                self._wakeup.notify_all()
        for record in ended:
            emit(
                "hwaware_lease_released",
                LeaseReleased(
                    pool=self.name,
                    slot_id=record.slot_id,
                    device_id=record.device_id,
                    holder_pid=record.pid,
                    reclaimed=reclaimed,
                ),
            )


_LIVE_POOLS: weakref.WeakSet[DevicePool] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for pool in list(_LIVE_POOLS):
        pool._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
