"""``hwaware bench chaos``: crash, OOM and hang injection through optuna or hyperopt."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from hwaware_plugins._progress import progress_bar
from hwaware_plugins.cli._table import format_table
from hwaware_plugins.errors import ConfigError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``chaos`` benchmark."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "chaos",
        help="inject worker crashes, CUDA OOM errors and hangs; audit leases, processes, records",
    )
    parser.add_argument("--framework", required=True, choices=("optuna", "hyperopt"))
    parser.add_argument("--trials", type=int, default=200, help="trials requested (default 200)")
    parser.add_argument("--crash-rate", type=float, default=0.1, help="per attempt (default 0.1)")
    parser.add_argument("--oom-rate", type=float, default=0.05, help="per attempt (default 0.05)")
    parser.add_argument(
        "--timeout-rate", type=float, default=0.05, help="hangs per attempt (default 0.05)"
    )
    parser.add_argument("--max-retries", type=int, default=0, help="retries of a failed trial")
    parser.add_argument("--seed", type=int, default=0, help="fixes every fault (default 0)")
    parser.add_argument(
        "--trial-timeout", type=float, default=None,
        help="seconds before a hung objective is killed (default 2)",
    )
    parser.add_argument(
        "--driver", choices=("optimize", "executor"), default="optimize",
        help="optuna only: hwaware_optuna.optimize (default) or ask/tell on LocalExecutor",
    )
    parser.add_argument(
        "--devices", default=None, help="declared-device TOML (default: four declared GPUs)"
    )
    parser.add_argument("--json", dest="json_out", default=None, help="write the report here")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print a summary, write the JSON report.

    Exit status 0 when every check passed, 1 when one failed (named on stderr).
    """
    from hwaware_plugins.chaos import ChaosRates, ChaosSettings, run_chaos
    from hwaware_plugins.hardware import resolve_devices

    devices = resolve_devices(args.devices) if args.devices else None
    settings = ChaosSettings(
        framework=args.framework, trials=args.trials,
        rates=ChaosRates(crash=args.crash_rate, oom=args.oom_rate, timeout=args.timeout_rate),
        max_retries=args.max_retries, seed=args.seed, trial_timeout=args.trial_timeout,
        devices=devices, driver=args.driver,
    )
    settings.validate()
    if args.json_out:
        _check_writable(args.json_out)
    # Each injected failure is logged at warning level; the summary says it all (-v shows them).
    loggers = [logging.getLogger(n) for n in ("hwaware_plugins", "hwaware_optuna",
                                              "hwaware_hyperopt")]
    previous = [logger.level for logger in loggers]
    if logging.getLogger().getEffectiveLevel() >= logging.WARNING:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
    bar = progress_bar(settings.trials, label=f"chaos {settings.framework}",
                       quiet=getattr(args, "quiet", False))
    try:
        with bar:
            report = run_chaos(settings, progress=lambda started: bar.advance_to(started))
    finally:
        for logger, level in zip(loggers, previous, strict=True):
            logger.setLevel(level)
    failed = report["failed"]
    row = {
        "framework": report["framework"], "requested": report["requested"],
        "completed": report["completed"], "crash": failed["crash"], "oom": failed["oom"],
        "timeout": failed["timeout"], "other": failed["other"],
        "retried ok": report["retried_then_completed"],
        "double leases": report["double_leases"], "orphans": report["orphan_processes"],
        "leases held": report["leases_held_at_end"], "wall s": report["wall_s"],
    }
    print(format_table([row], list(row)))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(report, indent=2) + "\n")
    broken = [name for name, ok in report["checks"].items() if name != "passed" and not ok]
    if broken:
        print(f"hwaware: chaos checks failed: {', '.join(broken)}", file=sys.stderr)
        return 1
    return 0


def _check_writable(path: str) -> None:
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
