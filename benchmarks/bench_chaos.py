"""Chaos benchmark over both frameworks: injected crashes, CUDA OOM errors and hangs.

Runs ``hwaware bench chaos`` (:func:`hwaware_plugins.chaos.run_chaos`) for
hyperopt (``HardwareAwareTrials``), optuna through ``hwaware_optuna.optimize``
and optuna through ``ask``/``tell`` on ``LocalExecutor``, each with
``--max-retries`` values 0 and 2, seeded, and writes every report plus a
Markdown table (the "Chaos" section of ``docs/benchmarks.md``).

Usage::

    nice .venv/bin/python benchmarks/bench_chaos.py --trials 200 --seed 0 \\
        --json benchmarks/results/chaos.json

Exit code 1 when a run misses one of its checks (every trial recorded,
totals add up, no double lease, no orphan process, no lease held at the end,
and with 2 retries at least 95% completed); ``--no-check`` only reports.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from hwaware_plugins.chaos import ChaosRates, ChaosSettings, run_chaos

RUNS: tuple[tuple[str, str], ...] = (
    ("hyperopt", "fmin"),
    ("optuna", "optimize"),
    ("optuna", "executor"),
)


def _row(report: dict[str, Any]) -> str:
    failed = report["failed"]
    settings = report["settings"]
    broken = [k for k, ok in report["checks"].items() if k != "passed" and not ok]
    cells = [
        report["framework"], settings["driver"], str(settings["max_retries"]),
        f"{settings['trial_timeout_s']:g}", str(report["requested"]), str(report["completed"]),
        f"{failed['crash']}/{failed['oom']}/{failed['timeout']}/{failed['other']}",
        str(report["retried_then_completed"]),
        "/".join(str(report["injected"][k]) for k in ("crash", "oom", "timeout")),
        str(report["double_leases"]), str(report["orphan_processes"]),
        str(report["leases_held_at_end"]), f"{report['wall_s']:.0f}",
        "yes" if not broken else "no: " + ", ".join(broken),
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| framework | path | retries | timeout s | requested | completed "
    "| failed crash/oom/timeout/other | retried then completed | injected crash/oom/timeout "
    "| double leases | orphans | leases held | wall s | checks pass |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> int:
    """Run every configuration; print the table; write the reports."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retries", default="0,2", help="comma-separated max_retries values")
    parser.add_argument("--json", dest="json_out", default=None)
    parser.add_argument("--no-check", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    rates = ChaosRates(crash=0.1, oom=0.05, timeout=0.05)
    reports = []
    print(HEADER, flush=True)
    for retries in (int(r) for r in args.retries.split(",")):
        for framework, driver in RUNS:
            settings = ChaosSettings(
                framework=framework, trials=args.trials, rates=rates, max_retries=retries,
                seed=args.seed, driver="optimize" if driver == "fmin" else driver,
            )
            report = run_chaos(settings)
            reports.append(report)
            print(_row(report), flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(reports, indent=2) + "\n")
    failed = [r for r in reports if not r["checks"]["passed"]]
    return 1 if failed and not args.no_check else 0


if __name__ == "__main__":
    sys.exit(main())
