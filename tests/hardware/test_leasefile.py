"""The pool's state file: records, atomic locked updates, holder liveness, the state folder."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware._leasefile import (
    LeaseFile,
    LeaseRecord,
    default_state_dir,
    ensure_state_dir,
    holder_alive,
    process_create_time,
    process_start_ticks,
)


def record(
    lease_id: str = "a", *, pid: int | None = None, started: float | None = None
) -> LeaseRecord:
    pid = os.getpid() if pid is None else pid
    if started is None:
        started = process_create_time(pid) or 0.0
    return LeaseRecord(lease_id, "gpu:0#0", "gpu:0", 512.0, pid, started, 7, "trial-1", 1.5)


def test_record_round_trips_through_json() -> None:
    original = record()
    assert LeaseRecord.from_dict(json.loads(json.dumps(original.to_dict()))) == original


def test_transaction_saves_changes_and_only_changes(tmp_path: Path) -> None:
    store = LeaseFile(tmp_path, "p")
    with store.transaction() as records:
        assert records == []
    assert not store.path.exists()  # nothing changed, nothing written
    with store.transaction() as records:
        records.append(record())
    assert LeaseFile(tmp_path, "p").read() == [record()]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "p.lock"]  # no temp left


def test_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    store = LeaseFile(tmp_path, "p")
    with pytest.raises(RuntimeError), store.transaction() as records:
        records.append(record())
        raise RuntimeError("boom")
    assert store.read() == []


def test_missing_folder_is_created(tmp_path: Path) -> None:
    store = LeaseFile(tmp_path / "gone" / "again", "p")
    with store.transaction() as records:
        records.append(record())
    assert (tmp_path / "gone" / "again").stat().st_mode & 0o777 == 0o700


def test_concurrent_updates_through_separate_objects_are_not_lost(tmp_path: Path) -> None:
    def add(worker: int) -> None:
        store = LeaseFile(tmp_path, "p")  # separate objects: only flock orders them
        for n in range(25):
            with store.transaction() as records:
                records.append(record(f"{worker}-{n}"))

    threads = [threading.Thread(target=add, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(LeaseFile(tmp_path, "p").read()) == 100


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is corrupt"),
        ('{"version": 99, "leases": []}', "has version 99"),
        ('{"version": 1, "leases": [{"lease_id": "x"}]}', "is corrupt"),
    ],
)
def test_bad_state_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "p.json").write_text(content)
    with pytest.raises(ConfigError, match=message + r".*delete it when no study uses pool 'p'"):
        LeaseFile(tmp_path, "p").read()


def test_holder_liveness_follows_pid_and_start_time() -> None:
    assert holder_alive(record())
    assert not holder_alive(record(started=1.0))  # same PID, other process: PID reused
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert not holder_alive(record(pid=int(finished.stdout), started=0.0))


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_start_ticks_decide_liveness_and_ignore_wall_clock_steps() -> None:
    ticks = process_start_ticks(os.getpid())
    assert ticks is not None
    stepped = dataclasses.replace(record(), pid_create_time=0.0, pid_start_ticks=ticks)
    assert holder_alive(stepped)  # the wall clock moved, the process is the same
    assert not holder_alive(dataclasses.replace(record(), pid_start_ticks=ticks + 1))
    assert process_start_ticks(2**22 + 1) is None


def test_default_state_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1234")
    assert default_state_dir() == Path("/run/user/1234/hwaware")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    memory_backed = Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK | os.X_OK)
    expected = Path("/dev/shm") if memory_backed else Path("/tmp")
    assert default_state_dir() == expected / f"hwaware-{os.getuid()}"


def test_private_state_dir_must_not_be_writable_by_others(tmp_path: Path) -> None:
    created = ensure_state_dir(tmp_path / "mine", private=True)
    assert created.stat().st_mode & 0o777 == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match="not private"):
        ensure_state_dir(shared, private=True)
    assert ensure_state_dir(shared, private=False) == shared


def test_child_forked_during_a_transaction_neither_deadlocks_nor_keeps_the_lock(
    tmp_path: Path,
) -> None:
    store = LeaseFile(tmp_path, "p")
    inside, finish = threading.Event(), threading.Event()

    def hold() -> None:
        with store.transaction() as records:
            records.append(record("parent"))
            inside.set()
            finish.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(10)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        with store.transaction() as records:
            records.append(record("child"))
        os._exit(0)
    time.sleep(0.1)
    finish.set()
    holder.join()
    deadline = time.monotonic() + 10
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child deadlocked on the inherited lock")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert [r.lease_id for r in store.read()] == ["parent", "child"]
