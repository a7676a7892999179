"""The ``hwaware`` command line.

Each of the core's sub-commands lives in its own private module exposing
``add_parser(subparsers) -> argparse.ArgumentParser``; the parser's ``handler``
default is a function ``(args) -> int`` returning the exit code. Plugins add
their own commands through the ``hwaware_add_commands`` hook (the adapters add
``worker`` and ``report`` that way); the core never imports a plugin. Errors
caused by user input (:class:`~hwaware_plugins.errors.ConfigError`) print one
line and exit with code 2. A reader that closes the pipe early
(``hwaware devices --json | head -1``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from hwaware_plugins import __version__
from hwaware_plugins.errors import ConfigError, HwawareError, PluginError

_COMMAND_MODULES: tuple[str, ...] = (
    "hwaware_plugins.cli._devices",
    "hwaware_plugins.cli._plugins",
    "hwaware_plugins.cli._bench",
    "hwaware_plugins.cli._demo",
    "hwaware_plugins.cli._leases",
)

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141
"""Exit code when the reader of stdout went away (128 + SIGPIPE, as a shell reports it)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit with code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with the core's sub-commands and those every plugin adds.

    Cost: imports the core's command modules and calls ``hwaware_add_commands``
    of every registered plugin (loading entry points on first use); no
    framework is imported.
    """
    parser = _Parser(prog="hwaware", description="Hardware-aware Optuna and Hyperopt.")
    parser.add_argument("--version", action="version", version=f"hwaware {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # that command is not part of this build
            raise
        module.add_parser(subparsers)
    _add_plugin_commands(subparsers)
    return parser


def _add_plugin_commands(subparsers: Any) -> None:
    """Call every plugin's ``hwaware_add_commands`` (LIFO, as pluggy would).

    :raises PluginError: a plugin's implementation raised (e.g. a command name
        another plugin already took); the message names the plugin.
    """
    from hwaware_plugins._manager import get_plugin_manager

    hook = get_plugin_manager().hook.hwaware_add_commands
    for impl in reversed(hook.get_hookimpls()):
        try:
            impl.function(**{name: subparsers for name in impl.argnames})
        except Exception as exc:
            raise PluginError(
                f"plugin {impl.plugin_name!r} failed to add its commands: {exc}; "
                "uninstall or fix that plugin"
            ) from exc


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real descriptor (e.g. captured in tests)
        pass


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hwaware`` command; returns the exit code."""
    try:
        parser = build_parser()
    except HwawareError as exc:  # a broken plugin: one line, not a traceback
        print(f"hwaware: error: {exc}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        returned = handler(args)
        code = 0 if returned is None else int(returned)  # a plugin's handler may return None
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except ConfigError as exc:
        print(f"hwaware: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HwawareError as exc:
        print(f"hwaware: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hwaware: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
