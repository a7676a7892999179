"""The two ``tpe`` paths side by side: closed form (default) against Optuna's sampler.

Simulates seeds 0..K-1 of digits@hetero-150 (150 workers, default budget) with
``tpe`` and with ``tpe`` ``exact=True`` (Optuna's ``TPESampler`` asked at every
decision), in one run; prints each path's wall time, trials per seed and
virtual seconds to the q0.5 target. Run from the repository root:

    nice -n 10 .venv/bin/python benchmarks/bench_tpe_paths.py 4
"""

from __future__ import annotations

import statistics
import sys
import time

from hwaware_plugins import load
from hwaware_plugins.simulation import load_devices, load_table
from hwaware_plugins.simulation._benchmark import auto_budget_hours
from hwaware_plugins.simulation._cluster import build_slots
from hwaware_plugins.simulation._engine import simulate
from hwaware_plugins.simulation._metrics import time_to_target
from hwaware_plugins.simulation._suite import SUITE_POOLS, SUITE_TABLES


def main(seeds: int) -> None:
    """Run both paths on ``seeds`` seeds and print one line per path."""
    table = load_table(SUITE_TABLES["digits"])
    slots = build_slots(load_devices(SUITE_POOLS["hetero-150"]), 150)
    budget = auto_budget_hours(table) * 3600
    target = table.loss_quantile(0.005)
    for exact in (False, True):
        trials, hours = [], []
        start = time.perf_counter()
        for seed in range(seeds):
            scheduler = load("scheduler", "tpe", seed=seed, exact=exact)
            run = simulate(table, slots, scheduler, budget_s=budget, seed=seed)
            reached = time_to_target(run, target)
            trials.append(len(run))
            hours.append(budget if reached is None else reached)
        print(
            f"exact={exact!s:5}  {time.perf_counter() - start:7.1f} s  trials {trials}  "
            f"median {statistics.median(trials)}  median s to q0.5 {statistics.median(hours):.4f} "
            f"(budget {budget:.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
