"""``hwaware devices``: table, JSON, declared files, simulated GPUs and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwaware_plugins.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "devices"
A100_FILE = EXAMPLES / "a100x4.toml"
FAKE_GPUS = """
[[gpu]]
name = "NVIDIA A100-SXM4-40GB"
memory_total_mb = 40960
uuid = "GPU-0a"

[[gpu.process]]
pid = 999999021
used_memory_mb = 2048

[[gpu]]
name = "NVIDIA A100-SXM4-40GB"
memory_total_mb = 40960
uuid = "GPU-0b"
"""


@pytest.fixture(autouse=True)
def _no_device_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HWAWARE_DEVICES", raising=False)
    monkeypatch.delenv("HWAWARE_FAKE_NVML", raising=False)


@pytest.fixture
def fake_gpus(tmp_path: Path) -> Path:
    path = tmp_path / "gpus.toml"
    path.write_text(FAKE_GPUS, encoding="utf-8")
    return path


def _json_out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[dict[str, object]]:
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list)
    return rows


def test_json_lists_this_hosts_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json_out(capsys, ["devices", "--json"])

    (cpu,) = [r for r in rows if r["kind"] == "cpu"]
    assert cpu["id"] == "cpu" and cpu["device_class"] == "cpu"
    required = {"id", "kind", "name", "uuid", "memory_total_mb", "memory_free_mb"}
    assert required | {"speed", "device_class", "host"} <= set(cpu)


def test_json_with_the_example_file_lists_four_a100(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json_out(capsys, ["devices", "--devices", str(A100_FILE), "--json"])

    assert len(rows) == 4
    assert {r["device_class"] for r in rows} == {"A100-40GB"}
    assert {r["memory_total_mb"] for r in rows} == {40960}
    assert {r["speed"] for r in rows} == {4.0}


def test_table_shows_devices_then_class_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--devices", str(A100_FILE)]) == 0
    out = capsys.readouterr().out

    devices, classes = out.strip().split("\n\n")
    assert devices.splitlines()[0].split()[:4] == ["id", "kind", "name", "class"]
    assert len(devices.splitlines()) == 2 + 4
    assert "40960/40960" in devices and "4 (declared)" in devices
    assert classes.splitlines()[0].split() == ["class", "devices", "slots", "speed"]
    assert classes.splitlines()[2].split() == ["A100-40GB", "4", "4", "4"]


def test_environment_file_is_used_without_the_option(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HWAWARE_DEVICES", str(A100_FILE))

    assert len(_json_out(capsys, ["devices", "--json"])) == 4


def test_the_environment_file_is_listed_whole_as_the_option_lists_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through HWAWARE_DEVICES a two-host file was refused ("no device is on this host").
    mixed = str(EXAMPLES / "mixed-node.toml")
    by_option = _json_out(capsys, ["devices", "--json", "--devices", mixed])
    monkeypatch.setenv("HWAWARE_DEVICES", mixed)
    assert _json_out(capsys, ["devices", "--json"]) == by_option
    assert len({d["host"] for d in by_option}) == 2


def test_a_blank_environment_file_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HWAWARE_DEVICES", " ")
    assert main(["devices"]) == 2
    assert "HWAWARE_DEVICES is blank" in capsys.readouterr().err


def test_simulated_gpus_are_listed_with_foreign_processes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fake_gpus: Path
) -> None:
    monkeypatch.setenv("HWAWARE_FAKE_NVML", str(fake_gpus))

    rows = {r["id"]: r for r in _json_out(capsys, ["devices", "--json"])}

    assert {"cpu", "gpu:0", "gpu:1"} <= set(rows)
    assert rows["gpu:0"]["uuid"] == "GPU-0a"
    assert rows["gpu:0"]["foreign_processes"] == 1
    assert rows["gpu:0"]["memory_free_mb"] == 40960 - 2048


def test_measure_speed_measures_the_cpu_and_keeps_declared_speeds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (cpu,) = [r for r in _json_out(capsys, ["devices", "--json", "--measure-speed"])]
    declared = _json_out(
        capsys, ["devices", "--devices", str(A100_FILE), "--json", "--measure-speed"]
    )

    assert cpu["speed_source"] == "measured"
    assert {r["speed"] for r in declared} == {4.0}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "declared-device file not found"),
        ("[[device]\n", "malformed TOML"),
        ("[[device]]\nkind = 'gpu'\nname = 'A'\nmemory_gb = 1\nflavour = 1\n", "unknown key"),
        ("[[device]]\nkind = 'gpu'\nname = 'A'\nmemory_gb = 1\ncount = -1\n", "'count'"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "devices.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")

    assert main(["devices", "--devices", str(path)]) == 2
    captured = capsys.readouterr()

    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("hwaware: error: ") and expected in lines[0]
    assert str(path) in lines[0]


def test_installed_command_runs_in_a_subprocess(fake_gpus: Path) -> None:
    script = Path(sys.executable).parent / "hwaware"
    if not script.exists():
        pytest.skip("the hwaware console script is not installed next to this Python")
    env = dict(os.environ, HWAWARE_FAKE_NVML=str(fake_gpus))
    env.pop("HWAWARE_DEVICES", None)

    done = subprocess.run(
        [str(script), "devices", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    ids = [row["id"] for row in json.loads(done.stdout)]
    assert ids == ["cpu", "gpu:0", "gpu:1"]


def test_an_empty_devices_option_is_an_error_not_a_probe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["devices", "--devices", " "]) == 2
    assert "--devices is empty" in capsys.readouterr().err
