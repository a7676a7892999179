"""Scheduling benchmark: random, tpe, shadho, oracle and hwaware on the digits table.

Time to the 2% and 0.5% loss quantiles and to the best loss, regret, models per
hour; 150 workers of benchmarks/devices/hetero-150.toml, 20 seeds, the default
budget (12 x the table's mean trial runtime), two processes: the suite's
digits@hetero-150 entry on its own.
Writes docs/img/scheduler_best_loss.svg and benchmarks/results/scheduler.json.
Run from the repository root (minutes: shadho refits 50 GPs every 10 results):

    nice -n 10 .venv/bin/python benchmarks/bench_scheduler.py

The whole suite (every packaged table on every packaged pool) is
benchmarks/bench_scheduler_suite.py.
"""

from __future__ import annotations

import sys

from hwaware_plugins.cli import main

ARGS = [
    "bench",
    "scheduler",
    "--table",
    "benchmarks/data/digits_cash.csv",
    "--devices",
    "benchmarks/devices/hetero-150.toml",
    "--workers",
    "150",
    "--seeds",
    "20",
    "--jobs",
    "2",
    "--json",
    "benchmarks/results/scheduler.json",
    "--svg",
    "docs/img/scheduler_best_loss.svg",
]

def run(args: list[str]) -> int:
    """Run ``hwaware bench scheduler`` with ``args`` and the command line's extra options
    (``-q``/``-v`` go before the subcommand, as ``hwaware`` takes them)."""
    import os

    os.makedirs("benchmarks/results", exist_ok=True)
    extra = sys.argv[1:]
    front = [a for a in extra if a in ("-q", "--quiet", "-v", "-vv")]  # options of `hwaware`
    return main(front + args + [a for a in extra if a not in front])


if __name__ == "__main__":
    sys.exit(run(ARGS))
