"""A lease whose holder process died is reclaimed by the next acquire, with an event."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import hwaware_plugins
from hwaware_plugins.events import LeaseReleased
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.hardware._pool import DevicePool

GPU = Device(id="gpu:0", kind="gpu", name="A100", uuid="GPU-0000", memory_total_mb=40000)


def _take_and_die(state_dir: str, ready: str) -> None:
    lease = DevicePool([GPU], name="crashy", state_dir=state_dir).acquire(timeout=10)
    Path(ready).write_text(lease.slot_id)
    os._exit(1)  # no release, no clean-up: the holder vanishes with its lease


class _Observer:
    def __init__(self) -> None:
        self.events: list[LeaseReleased] = []

    @hwaware_plugins.hookimpl
    def hwaware_lease_released(self, event: LeaseReleased) -> None:
        self.events.append(event)


@pytest.fixture
def observer() -> Iterator[_Observer]:
    seen = _Observer()
    hwaware_plugins.register_plugin(seen, name="test-dead-holder-observer")
    yield seen
    hwaware_plugins.unregister_plugin(seen)


def test_slot_of_a_crashed_process_is_reclaimed(tmp_path: Path, observer: _Observer) -> None:
    ready = tmp_path / "ready"
    child = multiprocessing.get_context("spawn").Process(
        target=_take_and_die, args=(str(tmp_path), str(ready))
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 1 and ready.read_text() == "gpu:0#0"

    pool = DevicePool([GPU], name="crashy", state_dir=tmp_path)
    lease = pool.acquire(timeout=2)

    assert lease.slot_id == "gpu:0#0"
    assert [r.pid for r in pool.active_leases()] == [os.getpid()]
    assert observer.events == [LeaseReleased("crashy", "gpu:0#0", "gpu:0", child.pid or 0, True)]
