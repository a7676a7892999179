"""The command line as a whole: commands added by plugins, help texts, a closed stdout pipe."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hwaware_plugins import hookimpl
from hwaware_plugins._manager import get_plugin_manager, register_plugin, unregister_plugin
from hwaware_plugins.chaos._run import find_driver
from hwaware_plugins.cli import EXIT_BROKEN_PIPE, build_parser, main
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hookspecs import CHAOS_DRIVER_KIND


def _greet(args: argparse.Namespace) -> int:
    print(f"hello {args.name}{'' if args.quiet else '!'}")
    return 3


def _plugin_with_a_command() -> types.SimpleNamespace:
    @hookimpl
    def hwaware_add_commands(subparsers: Any) -> None:
        parser = subparsers.add_parser("greet", help="say hello")
        parser.add_argument("--name", required=True)
        parser.set_defaults(handler=_greet)

    return types.SimpleNamespace(hwaware_add_commands=hwaware_add_commands)


@pytest.fixture
def greeter() -> Iterator[types.SimpleNamespace]:
    plugin = _plugin_with_a_command()
    register_plugin(plugin, name="greeter")
    yield plugin
    unregister_plugin(plugin)


def test_a_plugin_adds_a_command_through_the_hook(
    greeter: types.SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-q", "greet", "--name", "ada"]) == 3
    assert capsys.readouterr().out == "hello ada\n"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "greet" in capsys.readouterr().out


def test_worker_and_report_are_the_optuna_adapters_commands() -> None:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name in ("worker", "report"):
        handler = commands.choices[name].get_default("handler")
        assert handler.__module__.startswith("hwaware_optuna."), name
    for name in ("devices", "plugins", "demo", "leases"):
        handler = commands.choices[name].get_default("handler")
        assert handler.__module__.startswith("hwaware_plugins.cli."), name


@pytest.mark.parametrize("command", ["demo", "report", "worker", "leases", "bench"])
def test_help_texts_have_no_rest_markup(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text and ":class:" not in text


@pytest.mark.parametrize("command", [["devices", "--json"], ["plugins"], ["leases", "--json"]])
def test_a_closed_stdout_pipe_ends_quietly(command: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "XDG_RUNTIME_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "hwaware_plugins.cli", *command],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the first write, as with `| head -0`
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == EXIT_BROKEN_PIPE
    assert "Traceback" not in err and "BrokenPipeError" not in err and err == ""


def test_without_a_demo_study_plugin_demo_says_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manager = get_plugin_manager()
    plugins = [impl.plugin for impl in manager.hook.hwaware_demo_study.get_hookimpls()]
    names = [manager.get_name(plugin) for plugin in plugins]
    for plugin in plugins:
        manager.unregister(plugin)
    try:
        assert main(["demo", "--out", str(tmp_path / "d")]) == 2
    finally:
        for plugin, name in zip(plugins, names, strict=True):
            manager.register(plugin, name=name)
    err = capsys.readouterr().err
    assert "pip install hwaware-optuna" in err and err.count("\n") == 1
    assert not (tmp_path / "d").exists()


def test_the_chaos_drivers_are_registered_by_the_adapters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plugins"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    drivers = {(row[1], row[2], row[3]) for row in rows if row and row[0] == CHAOS_DRIVER_KIND}
    assert drivers == {
        ("executor", "optuna", "hwaware-optuna"), ("optimize", "optuna", "hwaware-optuna"),
        ("fmin", "hyperopt", "hwaware-hyperopt"),
    }  # fmt: skip
    assert find_driver("hyperopt", "optimize")[0] == "fmin"  # hyperopt's only path
    assert find_driver("optuna", "executor")[0] == "executor"
    with pytest.raises(ConfigError, match="no chaos driver 'nope' for optuna; known: executor"):
        find_driver("optuna", "nope")
    with pytest.raises(ConfigError, match="needs the hwaware_mxnet adapter"):
        find_driver("mxnet", "optimize")


def test_a_plugin_taking_a_taken_command_name_is_named_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @hookimpl
    def hwaware_add_commands(subparsers: Any) -> None:
        subparsers.add_parser("devices", help="clashes with the core's command")

    clash = types.SimpleNamespace(hwaware_add_commands=hwaware_add_commands)
    register_plugin(clash, name="clasher")
    try:
        assert main(["devices"]) == 1
    finally:
        unregister_plugin(clash)
    err = capsys.readouterr().err
    assert "plugin 'clasher' failed to add its commands" in err and err.count("\n") == 1
