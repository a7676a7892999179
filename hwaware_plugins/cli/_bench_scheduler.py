"""``hwaware bench scheduler``: fcfs vs shadho vs hwaware on a simulated cluster."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from hwaware_plugins._progress import progress_bar
from hwaware_plugins.cli._table import format_table
from hwaware_plugins.errors import ConfigError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``scheduler`` benchmark."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "scheduler",
        help="compare schedulers on a simulated heterogeneous cluster replaying measured trials",
    )
    parser.add_argument("--table", required=True, help="trial table CSV (subspace, family, ...)")
    parser.add_argument("--devices", required=True, help="declared-device TOML file")
    parser.add_argument("--workers", type=int, default=None, help="worker slots (default: file's)")
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..K-1 (default 20)")
    parser.add_argument("--budget-hours", type=float, required=True, help="virtual time budget")
    parser.add_argument(
        "--target-loss", type=float, default=None, help="default: the 0.5%% quantile of the table"
    )
    parser.add_argument(
        "--schedulers", default="fcfs,shadho,hwaware", help="comma-separated (default: all three)"
    )
    parser.add_argument("--json", dest="json_out", default=None, help="write the report here")
    parser.add_argument("--svg", default=None, help="write a best-loss-over-time plot here")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Simulate, print a table, write the JSON report (and the plot)."""
    from hwaware_plugins.simulation import load_devices, load_table, run_benchmark

    if args.target_loss is not None and not math.isfinite(args.target_loss):
        raise ConfigError(f"--target-loss must be finite, got {args.target_loss}")
    names = [n.strip() for n in args.schedulers.split(",") if n.strip()]
    known = {"fcfs", "shadho", "hwaware"}
    from hwaware_plugins._manager import components

    known |= {c.name for c in components() if c.kind == "scheduler"}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown scheduler(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    table = load_table(args.table)
    devices = load_devices(args.devices)
    bar = progress_bar(
        args.seeds * len(names), label="simulating", quiet=getattr(args, "quiet", False)
    )

    def progress(name: str, seed: int) -> None:
        bar.update(note=f"{name} seed {seed + 1}/{args.seeds} done")

    with bar:
        report = run_benchmark(
            table,
            devices,
            workers=args.workers,
            seeds=args.seeds,
            budget_hours=args.budget_hours,
            target_loss=args.target_loss,
            schedulers=names,
            progress=progress,
        )
    rows = [
        {
            "scheduler": name,
            "models/h": f"{s['models_per_hour']:.4g}",
            "hours to target": f"{s['hours_to_target']:.4g}",
            "reached": f"{s['reached_target_fraction']:.0%}",
            "best loss": f"{s['best_loss']:.4g}",
        }
        for name, s in report["schedulers"].items()
    ]
    print(format_table(rows, ["scheduler", "models/h", "hours to target", "reached", "best loss"]))
    for name, r in report.get("ratios", {}).items():
        parts = ", ".join(f"{k} {'n/a' if v is None else f'{v:.3g}x'}" for k, v in r.items())
        print(f"{name}: {parts}")
    bounds = report["bounds"]
    if bounds["hours_to_target_floor"] is not None:
        ceilings = ", ".join(
            f"vs {name} {value:.3g}x" for name, value in bounds["time_to_target_ceiling"].items()
        )
        print(
            f"soonest possible time to target: {bounds['hours_to_target_floor']:.4g} h; "
            f"largest possible time-to-target ratio: {ceilings}"
        )
    if args.json_out:
        _write(args.json_out, json.dumps(report, indent=2) + "\n")
    if args.svg:
        from hwaware_plugins.reporting import best_loss_chart

        _write(args.svg, best_loss_chart(report))
    return 0


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
