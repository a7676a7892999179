"""Adaptive SGD versus sync, DS-Sync and AdaSync: time to 95% accuracy on digits.

Runs ``hwaware bench sgd`` with heterogeneous (1,2,4) and homogeneous (1,1,1)
workers over several seeds and prints the acceptance ratios:

    python benchmarks/bench_sgd.py [--seeds 0,1,2] [--out results.json]

Acceptance (docs/benchmarks.md): adaptive reaches the target >= 1.5x sooner
than sync at 1,2,4; no more than 1.1x later at 1,1,1; final accuracy within
0.5 points of sync's.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from hwaware_plugins.cli._bench_sgd import SGDBenchConfig, run_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, Any] = {}
    for slowdowns in ((1.0, 2.0, 4.0), (1.0, 1.0, 1.0)):
        key = ",".join(f"{s:g}" for s in slowdowns)
        runs = [
            run_benchmark(SGDBenchConfig(slowdowns=slowdowns, target_accuracy=args.target,
                                         seed=seed))["policies"]
            for seed in seeds
        ]
        results[key] = runs
        for policy in runs[0]:
            times = [r[policy]["time_to_target_s"] for r in runs]
            finals = [r[policy]["final_accuracy"] for r in runs]
            shown = "never" if None in times else f"{statistics.median(times):.4f} s"
            print(f"slowdowns {key:7s} {policy:9s} median time to target {shown:>10s}  "
                  f"median final accuracy {statistics.median(finals):.4f}")
        sync = [r["sync"]["time_to_target_s"] for r in runs]
        adaptive = [r["adaptive"]["time_to_target_s"] for r in runs]
        if None not in sync and None not in adaptive:
            ratio = statistics.median(s / a for s, a in zip(sync, adaptive, strict=True))
            print(f"slowdowns {key}: sync / adaptive time to target (median) = {ratio:.2f}")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
