"""hwaware's options judged by the acceptance rule on the suite, with the baselines' runs cached.

Runs every suite entry with all five schedulers (150 workers, each entry's default
budget) and prints, per entry, hwaware's verdict against random, tpe and shadho
(``ratio/bound/worst target/regret`` and ``+`` where the rule of issue #13 holds),
then how many entry-baseline pairs hold. The baselines' and the oracle's runs do
not depend on hwaware's options, so they are pickled under ``--cache`` the first
time and reused: a second variant with the same seeds re-simulates only hwaware
(about 2-3 minutes for 10 seeds on 2 cores instead of 6-7). Run from the
repository root, once per variant, with the same ``--seeds``:

    python benchmarks/scheduler_variant_pairs.py '{}' --seeds 10 --out /tmp/v-default.json
    python benchmarks/scheduler_variant_pairs.py '{"first_wave": "mixed"}' --seeds 10

Delete the cache after changing a baseline, the simulator or a table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import time
from pathlib import Path
from typing import Any

from scheduler_variants import _with_defaults  # the same option patch

import hwaware_plugins.simulation._benchmark as bench
from hwaware_plugins.simulation import load_devices, load_table
from hwaware_plugins.simulation._suite import suite_entries
from hwaware_plugins.simulation._verdict import verdicts


def _caching(cache: Path, entry: dict[str, str]) -> None:
    """Wrap the benchmark's run loop: runs of every scheduler but hwaware come from ``cache``."""
    original = bench._all_runs

    def key(label: str, spec: Any, seeds: int, budget_s: float) -> Path:
        text = repr((entry["label"], label, spec, seeds, budget_s))
        return cache / hashlib.sha1(text.encode()).hexdigest()

    def cached(
        table: Any, slots: Any, schedulers: Any, seeds: int, budget_s: float, jobs: int,
        progress: Any,
    ) -> dict[str, Any]:
        runs: dict[str, Any] = {}
        todo: dict[str, Any] = {}
        for label, spec in schedulers.items():
            path = key(label, spec, seeds, budget_s)
            if spec[0] != "hwaware" and path.exists():
                runs[label] = pickle.loads(path.read_bytes())
            else:
                todo[label] = spec
        fresh = original(table, slots, todo, seeds, budget_s, jobs, progress) if todo else {}
        for label, result in fresh.items():
            if todo[label][0] != "hwaware":
                key(label, todo[label], seeds, budget_s).write_bytes(pickle.dumps(result))
        runs.update(fresh)
        return {label: runs[label] for label in schedulers}

    bench._all_runs = cached


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("options", help="HwawareScheduler options as JSON, e.g. '{}'")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/hwaware-variant-cache"))
    parser.add_argument("--out", type=Path, help="write the verdicts and ratios here (JSON)")
    args = parser.parse_args()
    options = json.loads(args.options)
    _with_defaults(options)
    args.cache.mkdir(parents=True, exist_ok=True)
    entry: dict[str, str] = {}
    _caching(args.cache, entry)
    results: dict[str, Any] = {}
    held = total = 0
    start = time.time()
    for item in suite_entries():
        entry["label"] = item.label
        report = bench.run_benchmark(
            load_table(item.table_path), load_devices(item.pool_path), workers=150,
            seeds=args.seeds, budget_hours=None, jobs=args.jobs,
        )
        found = verdicts(report)
        results[item.label] = {"verdicts": found, "ratios": report["ratios"]}
        ok = sum(v["ok"] for v in found.values())
        held, total = held + ok, total + len(found)
        cells = " ".join(
            f"{name}:{v['hwaware']:.2f}/{v['bound']:.2f}/w{v['worst_target']:.2f}/"
            f"r{v['regret'] or 0:.2f}{'+' if v['ok'] else '-'}"
            for name, v in found.items()
        )
        print(f"{item.label:28s} {ok}/{len(found)} {cells} ({time.time() - start:.0f}s)",
              flush=True)
    print(f"held on {held}/{total} entry-baseline pairs, options {options}")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
