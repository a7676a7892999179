"""The speed probe: measurement, the per-user cache, refresh, and declared speeds."""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from hwaware_plugins.hardware import Device, _speed, calibrate, measure_speed, probe_host_devices


@pytest.fixture
def cpu() -> Device:
    return probe_host_devices()[0]


@pytest.fixture
def cpu_measurements(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every real CPU measurement."""
    calls: list[float] = []
    real = _speed.measure_cpu_gflops

    def counting() -> float:
        calls.append(real())
        return calls[-1]

    monkeypatch.setattr(_speed, "measure_cpu_gflops", counting)
    return calls


def test_cpu_is_measured_once_then_cached(
    cpu: Device, cpu_measurements: list[float], tmp_path: Path
) -> None:
    cache = tmp_path / "speed.json"

    first = measure_speed(cpu, cache_path=cache)
    second = measure_speed(cpu, cache_path=cache)

    assert len(cpu_measurements) == 1
    assert first == second == pytest.approx(cpu_measurements[0] / _speed.REFERENCE_GFLOPS)
    assert 0.001 < first < 1000
    stored = json.loads(cache.read_text(encoding="utf-8"))
    assert stored == {_speed.cache_key(cpu): {"speed": first}}


def test_refresh_measures_again(cpu: Device, cpu_measurements: list[float], tmp_path: Path) -> None:
    cache = tmp_path / "speed.json"
    measure_speed(cpu, cache_path=cache)

    measure_speed(cpu, cache_path=cache, refresh=True)
    calibrate([cpu, cpu], cache_path=cache, refresh=True)

    assert len(cpu_measurements) == 3  # refresh measures each key once per call


def test_default_cache_is_under_xdg_cache_home(
    cpu: Device, cpu_measurements: list[float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    measure_speed(cpu)

    assert _speed.cache_key(cpu) in json.loads((tmp_path / "hwaware" / "speed.json").read_text())


def test_a_corrupt_cache_is_ignored_and_rewritten(
    cpu: Device, cpu_measurements: list[float], tmp_path: Path
) -> None:
    cache = tmp_path / "speed.json"
    cache.write_text("{not json", encoding="utf-8")

    speed = measure_speed(cpu, cache_path=cache)

    assert len(cpu_measurements) == 1
    assert json.loads(cache.read_text())[_speed.cache_key(cpu)]["speed"] == speed


def test_calibrate_measures_probed_devices_and_keeps_declared_ones(
    cpu: Device, cpu_measurements: list[float], tmp_path: Path
) -> None:
    declared = Device(id="h/gpu:0", kind="gpu", name="A100", speed=4.0, speed_source="declared")

    measured_cpu, kept = calibrate([cpu, declared], cache_path=tmp_path / "s.json")

    assert kept is declared
    assert measured_cpu.speed_source == "measured"
    assert measured_cpu.speed == pytest.approx(cpu_measurements[0] / _speed.REFERENCE_GFLOPS)
    assert replace(measured_cpu, speed=cpu.speed, speed_source="default") == cpu


def test_gpu_speed_comes_from_the_gpu_probe_and_is_cached_by_uuid(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runs: list[str] = []

    def fake_gpu_probe(uuid: str) -> float:
        runs.append(uuid)
        return 19500.0

    monkeypatch.setattr(_speed, "measure_gpu_gflops", fake_gpu_probe)
    gpu = Device(id="gpu:0", kind="gpu", name="NVIDIA A100", uuid="GPU-1234")
    cache = tmp_path / "speed.json"

    assert measure_speed(gpu, cache_path=cache) == 195.0
    assert measure_speed(replace(gpu, id="gpu:7"), cache_path=cache) == 195.0
    assert runs == ["GPU-1234"]
    assert "GPU-1234" in _speed.cache_key(gpu)


def test_devices_that_cannot_be_measured_keep_their_speed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    remote = Device(id="n/cpu:0", kind="cpu", name="x", host="elsewhere.invalid", speed=2.0)
    no_uuid = Device(id="gpu:0", kind="gpu", name="A100", speed=3.0)
    cache = tmp_path / "speed.json"

    with caplog.at_level(logging.INFO):
        assert measure_speed(remote, cache_path=cache) == 2.0
        assert calibrate([no_uuid], cache_path=cache) == [no_uuid]

    assert "elsewhere.invalid" in caplog.text and "no UUID" in caplog.text
    assert not cache.exists()


def test_gpu_probe_without_cuda_keeps_the_speed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    if Path("/dev/nvidiactl").exists():
        pytest.skip("this test is for hosts without an NVIDIA driver")
    gpu = Device(id="gpu:0", kind="gpu", name="A100", uuid="GPU-0000", speed=3.0)

    with caplog.at_level(logging.INFO):
        assert measure_speed(gpu, cache_path=tmp_path / "s.json") == 3.0

    assert "keeping its speed" in caplog.text


def test_simulated_gpus_are_not_measured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def must_not_run(uuid: str) -> float:
        raise AssertionError("a simulated GPU was benchmarked")

    monkeypatch.setattr(_speed, "measure_gpu_gflops", must_not_run)
    monkeypatch.setenv("HWAWARE_FAKE_NVML", str(tmp_path / "fake.toml"))
    gpu = Device(id="gpu:0", kind="gpu", name="A100", uuid="GPU-fake", speed=3.0)

    with caplog.at_level(logging.INFO):
        assert calibrate([gpu], cache_path=tmp_path / "s.json") == [gpu]

    assert "simulated" in caplog.text
