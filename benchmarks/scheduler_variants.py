"""hwaware's options side by side on the suite: is another default better everywhere?

Runs ``random``, ``tpe`` and ``hwaware`` with one set of ``HwawareScheduler``
options on every suite entry and prints hwaware's time-to-quality ratio (geometric
mean over the targets) and regret ratio against random and tpe. Run once per
variant, from the repository root:

    python benchmarks/scheduler_variants.py '{}' --seeds 10
    python benchmarks/scheduler_variants.py '{"first_wave": "uniform"}' --seeds 10
    python benchmarks/scheduler_variants.py '{"promise": "counts"}' --seeds 10
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hwaware_plugins.scheduling._hwaware import HwawareScheduler
from hwaware_plugins.simulation import load_devices, load_table, run_benchmark
from hwaware_plugins.simulation._suite import suite_entries


def _with_defaults(options: dict[str, Any]) -> None:
    """Make ``options`` the defaults of every HwawareScheduler built in this process
    (and in the processes it forks for ``--jobs``)."""
    original = HwawareScheduler.__init__

    def patched(self: HwawareScheduler, seed: int | None = None, **kwargs: Any) -> None:
        original(self, seed, **{**options, **kwargs})

    HwawareScheduler.__init__ = patched  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("options", help="HwawareScheduler options as JSON, e.g. '{}'")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    options = json.loads(args.options)
    _with_defaults(options)
    for entry in suite_entries():
        report = run_benchmark(
            load_table(entry.table_path), load_devices(entry.pool_path), workers=150,
            seeds=args.seeds, budget_hours=None, schedulers=["random", "tpe", "hwaware"],
            jobs=args.jobs,
        )
        ratios = report["ratios"]
        print(f"{entry.label} {options} "
              f"vs random {ratios['hwaware_vs_random']['time_to_target_gmean']:.2f} "
              f"vs tpe {ratios['hwaware_vs_tpe']['time_to_target_gmean']:.2f} | regret "
              f"{ratios['hwaware_vs_random']['regret_auc']:.2f} "
              f"{ratios['hwaware_vs_tpe']['regret_auc']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
