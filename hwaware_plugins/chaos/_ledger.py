"""The chaos run's ledger: files workers write so the driver can audit the run afterwards.

Layout of the run folder (all writes are single ``open``/``rename`` calls, so a
worker killed at any instant leaves the ledger consistent):

- ``starts/<trial>/<attempt>-<pid>``: one file per attempt of a trial (the
  attempt number of the next attempt is the count of files);
- ``pids/<pid>-<create time>``: every worker process and every process a
  worker spawned, so leftovers (orphans) can be found at the end;
- ``slots/<slot>``: held while an attempt runs on a slot, created with
  ``O_EXCL``; a second live holder is a double lease, written to
  ``double/<slot>-<pid>``. A marker left by a dead holder (a crash, a kill)
  is stale and taken over.

Thread- and process-safe for the access pattern of a run: one attempt per
trial at a time, any number of trials at once.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import psutil

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# psutil's create times of one process may differ by a few ms between reads.
_CREATE_TIME_TOLERANCE_S = 0.05


def safe_name(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``_``."""
    return _UNSAFE.sub("_", text) or "_"


def _create_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def process_alive(pid: int, create_time: float) -> bool:
    """True when ``pid`` runs, is not a zombie and started at ``create_time`` (no PID reuse)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return bool(abs(process.create_time() - create_time) <= _CREATE_TIME_TOLERANCE_S)
    except psutil.Error:
        return False


class Ledger:
    """Reads and writes the ledger files of one chaos run in ``run_dir``.

    Cost: each call is a few file-system operations (``double_leases`` and
    ``live_processes`` list a folder; the latter also asks psutil per entry).
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)

    def _folder(self, *parts: str) -> Path:
        path = self.run_dir.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- written by workers -----------------------------------------------------------------

    def begin_attempt(self, trial: str) -> int:
        """Record a new attempt of ``trial`` by this process; return its 0-based number."""
        folder = self._folder("starts", safe_name(trial))
        number = len(os.listdir(folder))
        (folder / f"{number}-{os.getpid()}").touch()
        return number

    def record_process(self, pid: int) -> None:
        """Remember ``pid`` (with its start time) as a process of this run."""
        started = _create_time(pid)
        if started is not None:
            (self._folder("pids") / f"{pid}-{started!r}").touch()

    def claim_slot(self, slot: str) -> bool:
        """Mark ``slot`` held by this process; False (and a recorded double lease) if it was.

        The marker is hard-linked from a finished draft, so it is never seen
        half-written. A marker whose holder is dead is stale: it is renamed
        away and the claim retried; a live holder found at either step is a
        double lease.
        """
        folder = self._folder("slots")
        marker = folder / safe_name(slot)
        me = os.getpid()
        draft = folder / f".draft-{me}"
        draft.write_text(f"{me} {_create_time(me)!r}")
        try:
            for _ in range(8):
                try:
                    os.link(draft, marker)  # atomic, and the marker is never empty
                    return True
                except FileExistsError:
                    pass
                holder = self._holder(marker)
                if holder is not None and process_alive(*holder):
                    return self._double(slot, holder[0])
                stale = folder / f".stale-{safe_name(slot)}-{me}"
                try:
                    os.rename(marker, stale)
                except FileNotFoundError:
                    continue
                moved = self._holder(stale)
                if moved is not None and process_alive(*moved):
                    return self._double(slot, moved[0])  # a live claimant took it meanwhile
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                draft.unlink()

    def _double(self, slot: str, holder: int) -> bool:
        name = f"{safe_name(slot)}-{os.getpid()}-held-by-{holder}"
        (self._folder("double") / name).touch()
        return False

    def release_slot(self, slot: str) -> None:
        """Remove this process's marker of ``slot`` (no-op when it holds none)."""
        marker = self._folder("slots") / safe_name(slot)
        holder = self._holder(marker)
        if holder is not None and holder[0] == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                marker.unlink()

    @staticmethod
    def _holder(marker: Path) -> tuple[int, float] | None:
        try:
            pid_text, started = marker.read_text().split()
            return int(pid_text), float(started)
        except (OSError, ValueError):
            return None  # vanished, or being written: retried by the caller

    # -- read by the driver -----------------------------------------------------------------

    def attempts(self, trial: str) -> int:
        """How many attempts of ``trial`` started."""
        folder = self.run_dir / "starts" / safe_name(trial)
        return len(os.listdir(folder)) if folder.is_dir() else 0

    def trials_started(self) -> int:
        """How many distinct trials started at least one attempt (for progress displays)."""
        folder = self.run_dir / "starts"
        return len(os.listdir(folder)) if folder.is_dir() else 0

    def double_leases(self) -> int:
        """How many times a worker found its slot held by another live worker."""
        folder = self.run_dir / "double"
        return len(os.listdir(folder)) if folder.is_dir() else 0

    def processes(self) -> list[tuple[int, float]]:
        """Every recorded process as ``(pid, create time)``."""
        folder = self.run_dir / "pids"
        found: list[tuple[int, float]] = []
        if folder.is_dir():
            for name in os.listdir(folder):
                pid_text, _, started = name.partition("-")
                with contextlib.suppress(ValueError):
                    found.append((int(pid_text), float(started)))
        return sorted(found)

    def live_processes(self) -> list[int]:
        """Recorded processes still alive (and not zombies): orphans once the run is over."""
        return [pid for pid, started in self.processes() if process_alive(pid, started)]
