"""``hwaware bench``: the benchmark group; each benchmark is its own module."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

_BENCH_MODULES: tuple[str, ...] = (
    "hwaware_plugins.cli._bench_scheduler",
    "hwaware_plugins.cli._bench_sgd",
    "hwaware_plugins.cli._bench_chaos",
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``bench`` and its sub-commands (``scheduler``, ``sgd``, ``chaos``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser("bench", help="run a benchmark")
    benches = parser.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    for module_name in _BENCH_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.add_parser(benches)
    return parser
