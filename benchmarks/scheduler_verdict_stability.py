"""How stable the acceptance rule's verdicts are: the same suite on disjoint sets of seeds.

Runs every suite entry with all five schedulers (150 workers, each entry's default
budget, hwaware's defaults) on seeds ``0..N-1`` and again on ``N..2N-1`` and prints,
per entry-baseline pair, hwaware's time-to-quality ratio and whether the rule of
issue #13 holds on each seed set, then how many pairs hold on each and how many
verdicts differ between them. A pair whose verdict differs is decided by the draw
of seeds, not by the scheduler. Run from the repository root:

    python benchmarks/scheduler_verdict_stability.py --seeds 20 --jobs 2

Cost: two full suites (about 3 minutes each for 20 seeds on 2 idle cores).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import hwaware_plugins.simulation._benchmark as bench
from hwaware_plugins.simulation import load_devices, load_table
from hwaware_plugins.simulation._suite import suite_entries
from hwaware_plugins.simulation._verdict import verdicts

_ORIGINAL_ONE_RUN = bench._one_run
_OFFSET = [0]


def _offset_run(task: Any) -> Any:
    """The benchmark's own run of one seed, with the seed moved by the current offset."""
    table, slots, infos, name, seed, budget_s, options = task
    return _ORIGINAL_ONE_RUN((table, slots, infos, name, seed + _OFFSET[0], budget_s, options))


def _suite(seeds: int, jobs: int) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for item in suite_entries():
        report = bench.run_benchmark(
            load_table(item.table_path),
            load_devices(item.pool_path),
            workers=150,
            seeds=seeds,
            budget_hours=None,
            jobs=jobs,
        )
        found[item.label] = verdicts(report)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per set (two sets)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write both sets' verdicts here (JSON)")
    args = parser.parse_args()
    bench._one_run = _offset_run  # forked pool workers inherit the patched module
    sets: list[dict[str, dict[str, Any]]] = []
    start = time.time()
    for offset in (0, args.seeds):
        _OFFSET[0] = offset
        sets.append(_suite(args.seeds, args.jobs))
        print(
            f"seeds {offset}..{offset + args.seeds - 1} done ({time.time() - start:.0f}s)",
            flush=True,
        )
    first, second = sets
    differ = 0
    print(f"{'entry':28s} {'vs':7s} {'set A':>14s} {'set B':>14s}")
    for label, pairs in first.items():
        for name, a in pairs.items():
            b = second[label][name]
            differ += a["ok"] != b["ok"]
            cells = [f"{v['hwaware']:.2f}x {'holds' if v['ok'] else 'fails'}" for v in (a, b)]
            mark = "  <- differs" if a["ok"] != b["ok"] else ""
            print(f"{label:28s} {name:7s} {cells[0]:>14s} {cells[1]:>14s}{mark}")
    held = [sum(v["ok"] for pairs in s.values() for v in pairs.values()) for s in sets]
    total = sum(len(pairs) for pairs in first.values())
    print(
        f"held on {held[0]}/{total} (seeds 0..{args.seeds - 1}) and {held[1]}/{total} "
        f"(seeds {args.seeds}..{2 * args.seeds - 1}); {differ} verdicts differ"
    )
    if args.out is not None:
        args.out.write_text(json.dumps({"seeds": args.seeds, "sets": sets}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
