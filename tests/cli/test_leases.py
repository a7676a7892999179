"""``hwaware leases``: shows each pool's leases and their holders; --clear-dead drops dead ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hwaware_plugins.cli import main
from hwaware_plugins.hardware import Device
from hwaware_plugins.hardware._leasefile import LeaseFile, LeaseRecord
from hwaware_plugins.hardware._pool import DevicePool


def _dead_record(slot: str) -> LeaseRecord:
    """A lease whose holder process has exited (as after a ``kill -9`` of a coordinator)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return LeaseRecord(
        lease_id=f"dead-{slot}", slot_id=slot, device_id=slot.split("#")[0], memory_mb=None,
        pid=child.pid, pid_create_time=time.time() - 5.0, thread_id=1, label="trial 7",
        acquired_at=time.time() - 60.0, pid_start_ticks=None,
    )  # fmt: skip


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """Pool ``study-a``: one lease of this live process (a real pool) and one of a dead one."""
    devices = [Device(id="gpu:0", kind="gpu", name="g", memory_total_mb=16384, index=0,
                      speed_source="declared"),
               Device(id="gpu:1", kind="gpu", name="g", memory_total_mb=16384, index=1,
                      speed_source="declared")]  # fmt: skip
    pool = DevicePool(devices, name="study-a", state_dir=tmp_path)
    pool.acquire(label="trial 8")
    with LeaseFile(tmp_path, "study-a").transaction() as records:
        taken = {r.slot_id for r in records}
        free = next(f"{d.id}#0" for d in devices if f"{d.id}#0" not in taken)
        records.append(_dead_record(free))
    yield tmp_path
    pool.close()


def _rows(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert main(["leases", *args, "--json"]) == 0
    rows: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return rows


def test_shows_live_and_dead_holders(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["leases", "--state-dir", str(state)]) == 0
    text = capsys.readouterr().out
    assert "study-a" in text and "trial 7" in text and "trial 8" in text
    assert "2 leases held in 1 pool" in text
    assert f"1 of dead holders: hwaware leases --clear-dead --state-dir {state})" in text
    rows = _rows(capsys, "--state-dir", str(state))
    assert sorted((r["label"], r["holder"]) for r in rows) == [
        ("trial 7", "dead"), ("trial 8", "alive")
    ]
    assert {r["pid"] for r in rows if r["holder"] == "alive"} == {os.getpid()}


def test_clear_dead_removes_only_dead_holders(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["leases", "--state-dir", str(state), "--clear-dead"]) == 0
    text = capsys.readouterr().out
    assert "cleared 1 lease of dead holders" in text and "1 lease held in 1 pool" in text
    assert [r.label for r in LeaseFile(state, "study-a").read()] == ["trial 8"]
    assert main(["leases", "--state-dir", str(state), "--clear-dead"]) == 0
    assert "cleared 0 leases" in capsys.readouterr().out


def test_clearing_keeps_a_lease_taken_meanwhile(state: Path) -> None:
    # Clearing runs inside the pool's locked transaction: a lease taken by another
    # thread at the same time is never lost.
    racer = Device(id="gpu:9", kind="gpu", name="g", memory_total_mb=8192, index=9,
                   speed_source="declared")  # fmt: skip
    pool = DevicePool([racer], name="study-a", state_dir=state)
    taker = threading.Thread(target=lambda: pool.acquire(label="racer"))
    taker.start()
    assert main(["leases", "--state-dir", str(state), "--clear-dead"]) == 0
    taker.join()
    labels = sorted(str(r.label) for r in LeaseFile(state, "study-a").read())
    pool.close()
    assert labels == ["racer", "trial 8"]


def test_default_folder_and_no_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert main(["leases"]) == 0
    assert f"0 leases held in 0 pools under {tmp_path / 'run' / 'hwaware'}" in (
        capsys.readouterr().out
    )
    assert not (tmp_path / "run").exists(), "looking must not create the state folder"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--state-dir", "/no/such/folder"], "is not a folder"),
     (["--pool", "nope"], "no pool 'nope'")],
)  # fmt: skip
def test_bad_input_is_one_line(
    args: list[str], message: str, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if args[0] == "--pool":
        args = [*args, "--state-dir", str(state)]
    assert main(["leases", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    if args[0] == "--pool":
        assert "pools there: study-a" in err


def test_pools_without_leases_are_not_counted_as_holding_them(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (state / "idle-pool.json").write_text('{"version": 1, "leases": []}')  # no lease in it
    assert main(["leases", "--state-dir", str(state)]) == 0
    assert "2 leases held in 1 of 2 pools" in capsys.readouterr().out
