"""The scheduling suite: every packaged table on every packaged device pool.

Five schedulers (random, tpe, shadho, oracle, hwaware), 150 workers, 20 seeds,
each entry's default budget (12 x its table's mean trial runtime), two
processes. Prints one table of hwaware against each baseline with the oracle's
ratio and the bound asked; writes benchmarks/results/scheduler_suite.json and
one best-loss-over-time plot per entry to docs/img/suite/. Run from the
repository root:

    nice -n 10 .venv/bin/python benchmarks/bench_scheduler_suite.py  # --seeds 5: quicker
"""

from __future__ import annotations

import sys

from bench_scheduler import run

ARGS = [
    "bench",
    "scheduler",
    "--suite",
    "--workers",
    "150",
    "--seeds",
    "20",
    "--jobs",
    "2",
    "--json",
    "benchmarks/results/scheduler_suite.json",
    "--svg",
    "docs/img/suite",
]

if __name__ == "__main__":
    sys.exit(run(ARGS))
