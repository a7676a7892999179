"""The NVML probe on simulated GPUs: plain GPUs, MIG, foreign processes, failures."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hwaware_plugins.errors import DeviceConfigError
from hwaware_plugins.hardware import foreign_process_count, probe_nvml_devices
from hwaware_plugins.hardware.fake_nvml import (
    NVML_ERROR_UNINITIALIZED,
    FakeGpu,
    FakeNvml,
    FakeProcess,
    NVMLError,
)


def test_plain_gpus_report_identity_memory_and_capability(two_a100: FakeNvml) -> None:
    devices = probe_nvml_devices(nvml=two_a100)

    assert [d.id for d in devices] == ["gpu:0", "gpu:1"]
    first, second = devices
    assert first.kind == "gpu"
    assert first.name == first.device_class == "NVIDIA A100-SXM4-40GB"
    assert first.uuid == two_a100.gpus[0].uuid
    assert first.uuid is not None and first.uuid.startswith("GPU-")
    assert first.uuid != second.uuid
    assert first.index == 0 and second.index == 1
    assert first.memory_total_mb == 40960
    assert first.memory_free_mb == 40960 - 1024 - 512
    assert second.memory_free_mb == 40960
    assert first.compute_capability == (8, 0)
    assert first.utilization == 37.0
    assert first.slots == 1 and first.parent_uuid is None


def test_every_init_is_followed_by_shutdown(two_a100: FakeNvml) -> None:
    probe_nvml_devices(nvml=two_a100)
    foreign_process_count(str(two_a100.gpus[0].uuid), nvml=two_a100)

    assert two_a100.init_calls == two_a100.shutdown_calls == 2
    with pytest.raises(NVMLError) as caught:
        two_a100.nvmlDeviceGetCount()
    assert caught.value.value == NVML_ERROR_UNINITIALIZED


def test_bytes_names_and_uuids_are_decoded() -> None:
    fake = FakeNvml([FakeGpu("Tesla T4", 15360)], strings_as_bytes=True)

    (device,) = probe_nvml_devices(nvml=fake)

    assert device.name == "Tesla T4"
    assert isinstance(device.uuid, str) and device.uuid.startswith("GPU-")


def test_only_processes_outside_this_process_tree_are_foreign() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        gpu = FakeGpu(
            "Tesla T4",
            15360,
            processes=[
                FakeProcess(os.getpid(), 100),
                FakeProcess(os.getppid(), 100),
                FakeProcess(child.pid, 100),
                FakeProcess(999_999_003, 100),
                FakeProcess(999_999_004, 100),
            ],
        )
        (device,) = probe_nvml_devices(nvml=FakeNvml([gpu]))
    finally:
        child.kill()
        child.wait()

    assert device.foreign_processes == 2
    assert device.busy_with_foreign_processes


def test_foreign_process_count_sees_a_process_that_arrives_mid_run(two_a100: FakeNvml) -> None:
    uuid = str(two_a100.gpus[1].uuid)
    assert foreign_process_count(uuid, nvml=two_a100) == 0

    two_a100.gpus[1].processes.append(FakeProcess(999_999_005, 2048))

    assert foreign_process_count(uuid, nvml=two_a100) == 1
    assert foreign_process_count(uuid, nvml=two_a100, ignore_pids=[999_999_005]) == 0
    assert probe_nvml_devices(nvml=two_a100)[1].memory_free_mb == 40960 - 2048


def test_foreign_process_count_rejects_an_unknown_uuid(two_a100: FakeNvml) -> None:
    with pytest.raises(DeviceConfigError, match="GPU-nope"):
        foreign_process_count("GPU-nope", nvml=two_a100)
    assert two_a100.init_calls == two_a100.shutdown_calls


def test_mig_instances_replace_their_parent(mig_node: FakeNvml) -> None:
    devices = probe_nvml_devices(nvml=mig_node)

    assert [d.id for d in devices] == ["mig:0.0", "mig:0.1", "gpu:1"]
    big, small, v100 = devices
    parent_uuid = mig_node.gpus[0].uuid
    assert all(d.uuid != parent_uuid for d in devices)
    assert big.kind == small.kind == "mig"
    assert big.uuid is not None and big.uuid.startswith("MIG-")
    assert big.parent_uuid == small.parent_uuid == parent_uuid
    assert big.device_class == "NVIDIA A100-SXM4-40GB MIG 3g.20gb"
    assert small.device_class == "NVIDIA A100-SXM4-40GB MIG 1g.5gb"
    assert big.memory_total_mb == 20096 and big.memory_free_mb == 20096 - 100
    assert small.memory_total_mb == 4864
    assert big.foreign_processes == 1 and small.foreign_processes == 0
    assert big.compute_capability == (8, 0)
    assert v100.kind == "gpu" and v100.compute_capability == (7, 0)


def test_foreign_process_count_works_on_a_mig_uuid(mig_node: FakeNvml) -> None:
    assert foreign_process_count(str(mig_node.gpus[0].mig_instances[0].uuid), nvml=mig_node) == 1


def test_no_driver_gives_no_gpus_and_one_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeNvml([FakeGpu("Tesla T4", 15360)], fail_init=True)

    with caplog.at_level(logging.DEBUG, logger="hwaware_plugins.hardware._nvml"):
        assert probe_nvml_devices(nvml=fake) == []
        assert foreign_process_count("GPU-any", nvml=fake) == 0

    assert "Driver Not Loaded" in caplog.text
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


def test_no_library_gives_no_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail

    assert probe_nvml_devices() == []
    assert foreign_process_count("GPU-any") == 0


def test_real_pynvml_without_a_driver_gives_no_gpus() -> None:
    if any(Path(p).exists() for p in ("/dev/nvidiactl", "/proc/driver/nvidia")):
        pytest.skip("an NVIDIA driver is present")
    import pynvml

    assert probe_nvml_devices(nvml=pynvml) == []


class _BrokenSecondGpu(FakeNvml):
    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any:
        if handle.gpu == 1:
            raise NVMLError(15)  # GPU is lost
        return super().nvmlDeviceGetMemoryInfo(handle)


def test_a_failing_gpu_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    fake = _BrokenSecondGpu([FakeGpu("Tesla T4", 15360), FakeGpu("Tesla T4", 15360)])

    with caplog.at_level(logging.WARNING):
        devices = probe_nvml_devices(nvml=fake)

    assert [d.id for d in devices] == ["gpu:0"]
    assert "gpu:1" in caplog.text
    assert fake.init_calls == fake.shutdown_calls == 1


def test_env_var_makes_the_default_probe_use_a_fake_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_file = tmp_path / "gpus.toml"
    fake_file.write_text(
        '[[gpu]]\nname = "NVIDIA H100 80GB HBM3"\nmemory_total_mb = 81559\n'
        'uuid = "GPU-1111"\ncompute_capability = [9, 0]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("HWAWARE_FAKE_NVML", str(fake_file))

    (device,) = probe_nvml_devices()
    assert (device.id, device.uuid, device.compute_capability) == ("gpu:0", "GPU-1111", (9, 0))
    assert foreign_process_count("GPU-1111") == 0

    # Another process adds a job to the GPU: rewriting the file is seen on the next check.
    with fake_file.open("a", encoding="utf-8") as handle:
        handle.write("[[gpu.process]]\npid = 999999006\nused_memory_mb = 100\n")
    assert foreign_process_count("GPU-1111") == 1
