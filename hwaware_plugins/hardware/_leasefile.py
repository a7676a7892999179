"""The on-disk state of a device pool: lease records in a JSON file under ``flock``.

One pool name is one JSON file (``<name>.json``) plus one lock file
(``<name>.lock``) in the state folder. Every read-modify-write runs under an
exclusive ``fcntl.flock`` on the lock file, so all processes of a node that use
the same pool name see one consistent set of leases; the file is replaced
atomically (write a temporary file, then ``os.replace``), so readers never see a
half-written state.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from hwaware_plugins._atomic import write_atomic
from hwaware_plugins._forksafe import FD_LOCK, close_tracked, track
from hwaware_plugins.errors import ConfigError, HwawareError

STATE_VERSION = 1
"""Version of the JSON layout; a file of another version is refused."""

_CREATE_TIME_TOLERANCE_S = 0.05


@dataclass(frozen=True)
class LeaseRecord:
    """One active lease as stored in the pool's state file.

    :param lease_id: unique id of the lease.
    :param slot_id: the slot it holds, e.g. ``"gpu:0#0"`` (``"gpu:0#mem"`` when packed by memory).
    :param device_id: the device of that slot.
    :param memory_mb: the memory need it declared, or ``None`` (whole device).
    :param pid: the holder process.
    :param pid_create_time: that process's start time (psutil), so a reused PID is detected.
    :param thread_id: the holder thread (``threading.get_ident``), for diagnostics.
    :param label: free text from the caller, e.g. a trial id.
    :param acquired_at: wall-clock time of acquisition (``time.time()``).
    :param pid_start_ticks: the holder's start in clock ticks since boot (Linux),
        compared exactly and immune to wall-clock steps; ``None`` elsewhere.
    :param family: the token of the holder's process family (the process that
        imported hwaware and the children it forked); CPU-slot leases of other
        families do not block a pool unless it asks for CPU courtesy. ``None``
        in records written by older versions.
    """

    lease_id: str
    slot_id: str
    device_id: str
    memory_mb: float | None
    pid: int
    pid_create_time: float
    thread_id: int
    label: str | None
    acquired_at: float
    pid_start_ticks: int | None = None
    family: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeaseRecord:
        """Rebuild a record from :meth:`to_dict`; ``KeyError``/``TypeError`` when malformed."""
        memory = data["memory_mb"]
        label = data["label"]
        ticks = data.get("pid_start_ticks")
        family = data.get("family")
        return cls(
            lease_id=str(data["lease_id"]),
            slot_id=str(data["slot_id"]),
            device_id=str(data["device_id"]),
            memory_mb=None if memory is None else float(memory),
            pid=int(data["pid"]),
            pid_create_time=float(data["pid_create_time"]),
            thread_id=int(data["thread_id"]),
            label=None if label is None else str(label),
            acquired_at=float(data["acquired_at"]),
            pid_start_ticks=None if ticks is None else int(ticks),
            family=None if family is None else str(family),
        )


def process_create_time(pid: int) -> float | None:
    """Start time of process ``pid`` (psutil), or ``None`` when it does not exist or is a zombie.

    Cost: two reads under ``/proc`` on Linux.
    """
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except psutil.NoSuchProcess:
        return None


def process_start_ticks(pid: int) -> int | None:
    """Start of process ``pid`` in clock ticks since boot, from ``/proc/<pid>/stat``.

    ``None`` when there is no such file (not Linux, process gone) or the process
    is a zombie. Unlike a wall-clock start time it never moves when the clock is
    stepped. Cost: one small file read.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
        # Fields after the parenthesised command name: state is field 3, starttime field 22.
        fields = data[data.rindex(b")") + 2 :].split()
        return None if fields[0] == b"Z" else int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def same_process_alive(pid: int, create_time: float, start_ticks: int | None = None) -> bool:
    """True when process ``pid`` still runs and is the one that started at that time.

    Compares start ticks since boot where both sides have them (Linux), else the
    psutil start time within 50 ms, so a reused PID counts as dead. A process we
    may not inspect counts as alive. Only meaningful on the node that recorded
    the values. Cost: one or two small reads under ``/proc``.
    """
    if start_ticks is not None:
        ticks = process_start_ticks(pid)
        if ticks is not None:
            return ticks == start_ticks
    try:
        started = process_create_time(pid)
    except psutil.AccessDenied:
        return True
    return started is not None and abs(started - create_time) <= _CREATE_TIME_TOLERANCE_S


def holder_alive(record: LeaseRecord) -> bool:
    """True when the process that took ``record`` still runs (see :func:`same_process_alive`)."""
    return same_process_alive(record.pid, record.pid_create_time, record.pid_start_ticks)


def drop_dead_holders(records: list[LeaseRecord]) -> list[LeaseRecord]:
    """Remove the records of dead holders from ``records`` (in place) and return them.

    Cost: one liveness check per distinct holder process.
    """
    verdict: dict[tuple[int, float, int | None], bool] = {}
    dead: list[LeaseRecord] = []
    for record in records:
        key = (record.pid, record.pid_create_time, record.pid_start_ticks)
        if key not in verdict:
            verdict[key] = holder_alive(record)
        if not verdict[key]:
            dead.append(record)
    if dead:
        records[:] = [record for record in records if record not in dead]
    return dead


def default_state_dir() -> Path:
    """Where lease state lives by default: a memory-backed folder private to this user.

    ``$XDG_RUNTIME_DIR/hwaware`` when that variable is set, else
    ``/dev/shm/hwaware-<uid>`` where ``/dev/shm`` exists (memory-backed, so a
    lease costs no disk write), else ``/tmp/hwaware-<uid>``.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "hwaware"
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm / f"hwaware-{os.getuid()}"
    return Path("/tmp") / f"hwaware-{os.getuid()}"


def ensure_state_dir(path: Path, *, private: bool) -> Path:
    """Create ``path`` (mode 0700) if needed and return it.

    :param private: check that the folder belongs to the current user and is
        not writable by others (used for the shared default location, where
        another user could have created it first).
    :raises ConfigError: the folder cannot be created, or fails the private check.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError as exc:
        raise ConfigError(
            f"cannot create lease state folder {path}: {exc}; pass state_dir= a writable folder"
        ) from exc
    if private and (info.st_uid != os.getuid() or info.st_mode & 0o022):
        raise ConfigError(
            f"lease state folder {path} is not private to uid {os.getuid()} (owner uid "
            f"{info.st_uid}, mode {oct(info.st_mode & 0o777)}); remove it or pass state_dir="
        )
    return path


class LeaseFile:
    """The lease records of one pool name, read and written under an exclusive lock.

    Thread-safe and process-safe: :meth:`transaction` holds a threading lock of
    this object and an ``flock`` on ``<name>.lock``; other objects and processes
    using the same folder and name wait for it. Fork-safe: a child forked during
    a transaction gets a fresh lock and drops its copy of the locked descriptor.

    :param directory: the state folder (created with mode 0700 when missing).
    :param name: the pool name, used for the file names.
    """

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self.path = directory / f"{name}.json"
        self.lock_path = directory / f"{name}.lock"
        self._lock = threading.Lock()
        self._fd: int | None = None
        _LIVE_FILES.add(self)

    def _after_fork_in_child(self) -> None:
        # A fork in the middle of another thread's transaction copies the locked
        # descriptor; closing the copy keeps the flock owned by the parent alone.
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[list[LeaseRecord]]:
        """Yield the current records as a list to edit in place; save it if it changed.

        Nothing is written when the block raises. Cost: one open, one ``flock``,
        one small JSON read, plus one atomic write when the records changed.

        :raises ConfigError: the state file is unreadable or of another version.
        """
        try:
            import fcntl
        except ImportError as exc:  # pragma: no cover - non-POSIX platforms
            raise HwawareError("device leases need fcntl.flock, which this platform lacks") from exc
        with self._lock:
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            with FD_LOCK:  # a worker forked now must not keep a copy (and the flock)
                try:
                    fd = os.open(self.lock_path, flags, 0o600)
                except FileNotFoundError:  # the folder is new, or was cleaned (at logout)
                    self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                    fd = os.open(self.lock_path, flags, 0o600)
                track(fd)
            self._fd = fd
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                records = self._read()
                before = list(records)
                yield records
                if records != before:
                    self._write(records)
            finally:
                self._fd = None
                close_tracked(fd)  # closing the descriptor drops the flock

    def peek(self) -> list[LeaseRecord] | None:
        """The records as last written, read without any lock; ``None`` if unreadable.

        Consistent (writes replace the file atomically) but possibly stale by the
        time it returns: use it to skip hopeless locked attempts, never to decide.
        Cost: one small file read, no lock.
        """
        try:
            return self._read()
        except (ConfigError, OSError):
            return None

    def read(self) -> list[LeaseRecord]:
        """The records as they are now (a consistent snapshot, taken under the lock)."""
        with self.transaction() as records:
            return list(records)

    def _read(self) -> list[LeaseRecord]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        try:
            data = json.loads(text)
            if data.get("version") != STATE_VERSION:
                raise ConfigError(
                    f"lease state file {self.path} has version {data.get('version')!r}, expected "
                    f"{STATE_VERSION}; delete it when no study uses pool {self.name!r}"
                )
            return [LeaseRecord.from_dict(item) for item in data["leases"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(
                f"lease state file {self.path} is corrupt ({exc!r}); delete it when no study "
                f"uses pool {self.name!r}"
            ) from exc

    def _write(self, records: list[LeaseRecord]) -> None:
        payload = json.dumps(
            {"version": STATE_VERSION, "pool": self.name, "leases": [r.to_dict() for r in records]},
            separators=(",", ":"),
        )
        # Not durable: the state only matters while processes live, and a power
        # loss ends every holder anyway; the replace keeps it atomic otherwise.
        write_atomic(self.path, payload.encode("utf-8"), durable=False, permissions=0o600)


_LIVE_FILES: weakref.WeakSet[LeaseFile] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for store in list(_LIVE_FILES):
        store._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
