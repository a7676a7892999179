"""Fixtures for the hardware tests: a clean device environment and simulated GPUs."""

from __future__ import annotations

import pytest

from hwaware_plugins.hardware.fake_nvml import FakeGpu, FakeMig, FakeNvml, FakeProcess


@pytest.fixture(autouse=True)
def _no_device_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's HWAWARE_DEVICES / HWAWARE_FAKE_NVML / HWAWARE_CPU_COURTESY must not leak in."""
    monkeypatch.delenv("HWAWARE_DEVICES", raising=False)
    monkeypatch.delenv("HWAWARE_FAKE_NVML", raising=False)
    monkeypatch.delenv("HWAWARE_CPU_COURTESY", raising=False)


@pytest.fixture
def two_a100() -> FakeNvml:
    """Two A100-40GB: gpu 0 has 1 GiB used plus a foreign process of 512 MiB, gpu 1 is idle."""
    return FakeNvml(
        [
            FakeGpu(
                "NVIDIA A100-SXM4-40GB",
                40960,
                memory_used_mb=1024,
                utilization=37,
                processes=[FakeProcess(999_999_001, 512)],
            ),
            FakeGpu("NVIDIA A100-SXM4-40GB", 40960),
        ]
    )


@pytest.fixture
def mig_node() -> FakeNvml:
    """GPU 0 split into two MIG instances (3g.20gb, 1g.5gb); GPU 1 a plain V100."""
    return FakeNvml(
        [
            FakeGpu(
                "NVIDIA A100-SXM4-40GB",
                40960,
                mig_instances=[
                    FakeMig("3g.20gb", 20096, processes=[FakeProcess(999_999_002, 100)]),
                    FakeMig("1g.5gb", 4864),
                ],
            ),
            FakeGpu("Tesla V100-SXM2-16GB", 16384, compute_capability=(7, 0)),
        ]
    )
