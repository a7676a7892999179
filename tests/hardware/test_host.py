"""The host probe: one CPU device sized by this process's usable cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hwaware_plugins.hardware import _host, probe_host_devices, this_host


def test_one_cpu_device_with_a_slot_per_usable_core() -> None:
    (cpu,) = probe_host_devices()

    cores = len(os.sched_getaffinity(0))
    assert (cpu.id, cpu.kind, cpu.device_class) == ("cpu", "cpu", "cpu")
    assert cpu.cores == cpu.slots == cores
    assert cpu.host == this_host()
    assert cpu.memory_total_mb is not None and cpu.memory_free_mb is not None
    assert 0 < cpu.memory_free_mb <= cpu.memory_total_mb
    assert cpu.utilization is not None and 0.0 <= cpu.utilization <= 100.0
    assert cpu.name and cpu.speed_source == "default"


def test_cores_follow_the_cpu_affinity() -> None:
    original = os.sched_getaffinity(0)
    if len(original) < 2:
        pytest.skip("needs at least two usable cores")
    os.sched_setaffinity(0, {min(original)})
    try:
        (cpu,) = probe_host_devices()
    finally:
        os.sched_setaffinity(0, original)

    assert cpu.cores == cpu.slots == 1


def test_cpu_model_comes_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6338\n", "utf-8")

    assert _host.cpu_model_name(cpuinfo) == "Intel(R) Xeon(R) Gold 6338"


def test_cpu_model_falls_back_to_platform_then_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing"
    monkeypatch.setattr("platform.processor", lambda: "x86_64")
    assert _host.cpu_model_name(missing) == "x86_64"

    monkeypatch.setattr("platform.processor", lambda: "")
    assert _host.cpu_model_name(missing) == "cpu"
