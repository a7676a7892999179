"""The inventory: discovery through plugins, resolving user input, device classes."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hwaware_plugins import hookimpl, register_plugin, unregister_plugin
from hwaware_plugins.errors import DeviceConfigError, PluginError
from hwaware_plugins.hardware import (
    Device,
    DevicePool,
    RemoteDevicesWarning,
    device_classes,
    discover_devices,
    resolve_devices,
    this_host,
)
from hwaware_plugins.hardware.fake_nvml import FakeNvml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "devices"
A100_FILE = EXAMPLES / "a100x4.toml"


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


def test_a_probes_own_config_error_reaches_the_user_as_it_is(extra_probe: list[Any]) -> None:
    # It was wrapped as "device probe of plugin ... failed: DeviceConfigError(...)".
    extra_probe.append(DeviceConfigError("tpu.toml: bad entry"))

    with pytest.raises(DeviceConfigError, match=r"^tpu.toml: bad entry$"):
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


def _two_hosts(tmp_path: Path, head: str = "") -> Path:
    path = tmp_path / "two-hosts.toml"
    path.write_text(
        f"{head}[[device]]\nkind = 'gpu'\nname = 'V100'\nhost = 'node-a.invalid'\ncount = 2\n"
        "memory_gb = 16\n"
        "[[device]]\nkind = 'gpu'\nname = 'T4'\ncount = 2\nmemory_gb = 15\n"
        "[[device]]\nkind = 'cpu'\nhost = 'node-b.invalid'\ncores = 8\n"
    )
    return path


def test_a_two_host_file_leases_only_this_hosts_devices(tmp_path: Path) -> None:
    # On old main the node-a GPUs were leased to this host's trials without a word.
    path = _two_hosts(tmp_path)
    with pytest.warns(RemoteDevicesWarning) as caught:
        devices = resolve_devices(path)
    (warning,) = caught
    message = str(warning.message)
    assert "node-a.invalid, node-b.invalid" in message and this_host() in message
    assert "hwaware" in message and 'remote_devices = "simulate"' in message
    assert [d.id for d in devices] == [f"{this_host()}/gpu:0", f"{this_host()}/gpu:1"]
    assert [d.index for d in devices] == [0, 1]

    pool = DevicePool(devices, state_dir=tmp_path / "state", name="two-hosts")
    leases = [pool.acquire(timeout=1) for _ in range(2)]
    assert {lease.device.host for lease in leases} == {this_host()}
    assert pool.try_acquire() is None  # the remote GPUs are not spare slots here


def test_the_remote_warning_is_given_once_per_file(tmp_path: Path) -> None:
    path = _two_hosts(tmp_path)
    with pytest.warns(RemoteDevicesWarning):
        resolve_devices(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(resolve_devices(path)) == 2


def test_a_file_of_other_hosts_only_is_refused_naming_them() -> None:
    with pytest.raises(DeviceConfigError) as caught:
        resolve_devices(EXAMPLES / "mixed-node.toml")
    message = str(caught.value)
    assert "no device is on this host" in message and "node-a, node-b" in message
    assert "hwaware worker" in message and "simulate" in message and "\n" not in message


def test_simulation_opt_in_keeps_remote_devices_silently(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        in_file = resolve_devices(_two_hosts(tmp_path, 'remote_devices = "simulate"\n'))
        by_keyword = resolve_devices(EXAMPLES / "mixed-node.toml", remote_devices="simulate")
    assert len(in_file) == 5 and len(by_keyword) == 6
    with pytest.raises(DeviceConfigError, match="remote_devices must be one of"):
        resolve_devices(A100_FILE, remote_devices="remote")


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
