"""The simulated NVML: its TOML format and its pynvml-like behaviour."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hwaware_plugins.errors import DeviceConfigError
from hwaware_plugins.hardware import probe_nvml_devices
from hwaware_plugins.hardware.fake_nvml import FakeGpu, FakeNvml, NVMLError

FAKE = """
[[gpu]]
name = "NVIDIA A100-SXM4-40GB"
memory_total_mb = 40960
uuid = "GPU-aaaa"

[[gpu.mig]]
profile = "2g.10gb"
memory_total_mb = 9856
memory_used_mb = 56
uuid = "MIG-bbbb"

[[gpu.mig.process]]
pid = 999999011
used_memory_mb = 800

[[gpu]]
name = "Tesla V100-SXM2-16GB"
memory_total_mb = 16384
memory_used_mb = 384
compute_capability = [7, 0]
utilization = 55

[[gpu.process]]
pid = 999999012
used_memory_mb = 1000
"""


def test_from_toml_builds_gpus_mig_instances_and_processes(tmp_path: Path) -> None:
    path = tmp_path / "fake.toml"
    path.write_text(FAKE, encoding="utf-8")

    mig, v100 = probe_nvml_devices(nvml=FakeNvml.from_toml(path))

    assert (mig.id, mig.uuid, mig.parent_uuid) == ("mig:0.0", "MIG-bbbb", "GPU-aaaa")
    assert mig.device_class == "NVIDIA A100-SXM4-40GB MIG 2g.10gb"
    assert mig.memory_free_mb == 9856 - 56 - 800 and mig.foreign_processes == 1
    assert v100.memory_free_mb == 16384 - 384 - 1000
    assert v100.compute_capability == (7, 0) and v100.utilization == 55.0
    assert v100.foreign_processes == 1


def test_fail_init_in_toml_means_no_driver(tmp_path: Path) -> None:
    path = tmp_path / "fake.toml"
    path.write_text("fail_init = true\n" + FAKE, encoding="utf-8")

    assert probe_nvml_devices(nvml=FakeNvml.from_toml(path)) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[gpu]\n", "malformed fake NVML TOML"),
        ("[[gpu]]\nname = 'x'\n", "entry 1: missing key 'memory_total_mb'"),
        ("[[gpu]]\nname = 'x'\nmemory_total_mb = 'lots'\n", "entry 1: bad value"),
        # accepted before: a table read as names, "false" read as true, negative and bool
        # memory, one uuid on two GPUs
        ("[gpu]\nname = 'x'\n", "GPUs must be [[gpu]] tables"),
        ("fail_init = 'false'\n", "fail_init must be true or false, got 'false'"),
        ("[[gpu]]\nname = 'x'\nmemory_total_mb = -100\n",
         "memory_total_mb must be an integer >= 0, got -100"),
        ("[[gpu]]\nname = 'x'\nmemory_total_mb = 10\nmemory_used_mb = true\n",
         "memory_used_mb must be an integer >= 0, got True"),
        ("[[gpu]]\nname = 'x'\nmemory_total_mb = 10\nuuid = 'GPU-a'\n" * 2,
         "uuids repeated: GPU-a"),
    ],
)
def test_bad_fake_files_raise_config_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "fake.toml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(DeviceConfigError, match=re.escape(expected)):
        FakeNvml.from_toml(path)


def test_missing_fake_file_names_the_env_var(tmp_path: Path) -> None:
    with pytest.raises(DeviceConfigError, match="HWAWARE_FAKE_NVML"):
        FakeNvml.from_toml(tmp_path / "missing.toml")


def test_calls_outside_a_session_fail_like_real_nvml() -> None:
    fake = FakeNvml([FakeGpu("Tesla T4", 15360)])

    with pytest.raises(NVMLError, match="Uninitialized"):
        fake.nvmlDeviceGetCount()
    fake.nvmlInit()
    assert fake.nvmlDeviceGetCount() == 1
    with pytest.raises(NVMLError, match="Invalid Argument"):
        fake.nvmlDeviceGetHandleByIndex(1)
    fake.nvmlShutdown()
    with pytest.raises(NVMLError, match="Uninitialized"):
        fake.nvmlShutdown()


def test_mig_mode_is_not_supported_before_ampere() -> None:
    fake = FakeNvml([FakeGpu("Tesla V100", 16384, compute_capability=(7, 0))])
    fake.nvmlInit()
    handle = fake.nvmlDeviceGetHandleByIndex(0)

    with pytest.raises(NVMLError, match="Not Supported"):
        fake.nvmlDeviceGetMigMode(handle)
    # ... and the probe still lists the GPU.
    fake.nvmlShutdown()
    assert [d.id for d in probe_nvml_devices(nvml=fake)] == ["gpu:0"]
