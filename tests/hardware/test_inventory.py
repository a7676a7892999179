"""The inventory: discovery through plugins, resolving user input, device classes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hwaware_plugins import hookimpl, register_plugin, unregister_plugin
from hwaware_plugins.errors import DeviceConfigError, PluginError
from hwaware_plugins.hardware import Device, device_classes, discover_devices, resolve_devices
from hwaware_plugins.hardware.fake_nvml import FakeNvml

A100_FILE = Path(__file__).resolve().parents[2] / "examples" / "devices" / "a100x4.toml"


@pytest.fixture
def extra_probe() -> Iterator[list[Any]]:
    """Register a plugin whose probe returns whatever the test puts in the yielded list."""
    found: list[Any] = []
    calls: list[Any] = []

    @hookimpl
    def hwaware_discover_devices(config: Any) -> Any:
        calls.append(config)
        if found and isinstance(found[0], Exception):
            raise found[0]
        return list(found)

    plugin = SimpleNamespace(hwaware_discover_devices=hwaware_discover_devices)
    register_plugin(plugin, name="acme-tpu")
    try:
        yield found
    finally:
        unregister_plugin(plugin)


def test_discovery_combines_host_and_nvml(two_a100: FakeNvml) -> None:
    devices = discover_devices({"nvml": two_a100})

    assert [d.id for d in devices] == ["cpu", "gpu:0", "gpu:1"]


def test_discovery_honours_skip_options(two_a100: FakeNvml) -> None:
    assert [d.id for d in discover_devices({"nvml": two_a100, "skip_host": True})] == [
        "gpu:0",
        "gpu:1",
    ]
    assert [d.id for d in discover_devices({"skip_nvml": True})] == ["cpu"]


def test_third_party_devices_are_added(extra_probe: list[Any]) -> None:
    extra_probe.append(Device(id="tpu:0", kind="gpu", name="TPU v4"))

    ids = [d.id for d in discover_devices({"skip_nvml": True})]

    assert ids == ["cpu", "tpu:0"]


def test_id_clash_names_both_plugins(extra_probe: list[Any]) -> None:
    extra_probe.append(Device(id="cpu", kind="cpu", name="other"))

    with pytest.raises(DeviceConfigError, match=r"'cpu' appears twice.*'core'.*'acme-tpu'"):
        discover_devices({"skip_nvml": True})


def test_a_crashing_probe_is_reported_by_plugin_name(extra_probe: list[Any]) -> None:
    extra_probe.append(RuntimeError("boom"))

    with pytest.raises(PluginError, match=r"acme-tpu.*boom"):
        discover_devices({"skip_nvml": True})


def test_a_probe_returning_non_devices_is_rejected(extra_probe: list[Any]) -> None:
    extra_probe.append({"id": "tpu:0"})

    with pytest.raises(PluginError, match=r"acme-tpu.*return Device objects"):
        discover_devices({"skip_nvml": True})


def test_resolve_none_probes_this_host() -> None:
    ids = [d.id for d in resolve_devices(None)]

    assert "cpu" in ids


def test_resolve_none_uses_the_declared_file_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HWAWARE_DEVICES", str(A100_FILE))

    devices = resolve_devices(None)

    assert len(devices) == 4 and {d.device_class for d in devices} == {"A100-40GB"}


@pytest.mark.parametrize("path", [str(A100_FILE), A100_FILE])
def test_resolve_path_loads_a_declared_file(path: str | Path) -> None:
    assert len(resolve_devices(path)) == 4


def test_resolve_sequence_returns_a_validated_copy() -> None:
    given = [Device(id="a", kind="cpu", name="x"), Device(id="b", kind="gpu", name="y")]

    result = resolve_devices(given)

    assert result == given and result is not given


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        ([], "empty"),
        ([Device(id="a", kind="cpu", name="x"), "gpu:0"], r"devices\[1\] is a str"),
        (
            [Device(id="a", kind="cpu", name="x"), Device(id="a", kind="gpu", name="y")],
            r"'a' appears twice \(at 'devices\[0\]' and 'devices\[1\]'\)",
        ),
        ({"a": 1}, "got dict"),
    ],
)
def test_resolve_rejects_bad_sequences(devices: Any, expected: str) -> None:
    with pytest.raises(DeviceConfigError, match=expected):
        resolve_devices(devices)


def _dev(id_: str, cls: str, speed: float, slots: int = 1, **speedup: float) -> Device:
    return Device(
        id=id_, kind="gpu", name=cls, device_class=cls, speed=speed, slots=slots, speedup=speedup
    )


def test_device_classes_fastest_first_ties_by_name() -> None:
    devices = [
        _dev("0", "T4", 1.0),
        _dev("1", "V100", 2.0, mlp=8.0),
        _dev("2", "V100", 4.0, slots=2, mlp=12.0, svm=1.0),
        _dev("3", "A10", 3.0),
        Device(id="cpu", kind="cpu", name="epyc", device_class="cpu", slots=16),
    ]

    classes = device_classes(devices)

    assert [c.name for c in classes] == ["A10", "V100", "T4", "cpu"]
    v100 = classes[1]
    assert v100.speed == 3.0 and v100.slots == 3
    assert dict(v100.speedup) == {"mlp": 10.0, "svm": 1.0}
    assert classes[3].slots == 16
    assert device_classes([]) == []
