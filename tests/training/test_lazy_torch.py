"""torch stays optional: listing plugins never imports it; using training without it says how."""

from __future__ import annotations

import subprocess
import sys

import pytest

import hwaware_plugins
from hwaware_plugins.training import AdaptivePolicy, DSSyncPolicy


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_listing_policies_does_not_import_torch() -> None:
    done = _run(
        "import sys, hwaware_plugins, hwaware_plugins.training\n"
        "names = [c.name for c in hwaware_plugins.components(kind='policy')]\n"
        "print(sorted(names)); print('torch' in sys.modules)"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["['adaptive', 'adasync', 'ds-sync', 'sync']", "False"]


def test_using_training_without_torch_names_the_install_command() -> None:
    done = _run(
        "import sys; sys.modules['torch'] = None\n"
        "from hwaware_plugins.training import launch\n"
        "launch(print, world_size=1)"
    )
    assert done.returncode != 0
    assert 'pip install "hwaware-plugins[torch]"' in done.stderr


def test_policies_load_by_name_with_options() -> None:
    policy = hwaware_plugins.load("policy", "ds-sync", group_size=3)
    assert isinstance(policy, DSSyncPolicy) and policy.group_size == 3
    assert isinstance(hwaware_plugins.load("policy", "adaptive"), AdaptivePolicy)
    with pytest.raises(hwaware_plugins.UnknownComponentError, match="adasync"):
        hwaware_plugins.load("policy", "nope")
