"""A real third-party package, installed with pip, extends every hook it can."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import hwaware_plugins
from hwaware_plugins import _manager

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "third_party_plugin"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip-install examples/third_party_plugin into a private folder (no network)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(EXAMPLE)],
        check=True,
        capture_output=True,
    )
    return target


@pytest.fixture
def plugin_on_path(
    installed_plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(installed_plugin))
    monkeypatch.setenv("ACME_ACCELERATORS", "acme-x1:16,acme-x1:16")
    _manager.reset()
    yield installed_plugin
    monkeypatch.undo()
    _manager.reset()


def test_components_of_the_plugin_are_listed_with_their_distribution(
    plugin_on_path: Path,
) -> None:
    [component] = [c for c in hwaware_plugins.components() if c.name == "round-robin"]
    assert (component.kind, component.provider) == ("scheduler", "hwaware-acme")


def test_the_plugin_scheduler_is_built_by_name_and_used(plugin_on_path: Path) -> None:
    from hwaware_plugins.scheduling._base import DeviceClassInfo, SubspaceInfo

    scheduler = hwaware_plugins.load("scheduler", "round-robin", seed=0)
    scheduler.setup([SubspaceInfo("a"), SubspaceInfo("b")], [DeviceClassInfo("cpu")])
    assert [scheduler.choose("cpu", None) for _ in range(3)] == ["a", "b", "a"]


def test_the_plugin_device_probe_adds_its_devices(plugin_on_path: Path) -> None:
    from hwaware_plugins.hardware import discover_devices

    devices = discover_devices({"skip_nvml": True})
    acme = [d for d in devices if d.name == "acme-x1"]
    assert [d.id for d in acme] == ["acme:0", "acme:1"]
    assert acme[0].memory_total_mb == 16 * 1024
    assert any(d.kind == "cpu" for d in devices), "the core's own probe still runs"


def test_the_plugin_complexity_rule_answers_for_its_distribution(plugin_on_path: Path) -> None:
    from hwaware_acme import PowerOfTwo

    from hwaware_plugins.space import distribution_complexity

    assert distribution_complexity(PowerOfTwo(0, 3), rule="shadho") == pytest.approx(2 - 1 / 4)
    assert distribution_complexity(PowerOfTwo(0, 3), rule="hwaware") > distribution_complexity(
        PowerOfTwo(0, 1), rule="hwaware"
    )


def test_cli_lists_the_plugin_in_json(installed_plugin: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(installed_plugin))
    result = subprocess.run(
        [sys.executable, "-m", "hwaware_plugins.cli", "plugins", "--json"],
        check=True, capture_output=True, text=True, env=env,
    )
    rows = json.loads(result.stdout)
    assert {"kind": "scheduler", "name": "round-robin", "framework": None,
            "provider": "hwaware-acme"}.items() <= next(
        r for r in rows if r["name"] == "round-robin").items()
    assert all({"kind", "name", "framework", "provider"} <= set(r) for r in rows)
