"""``hwaware demo``: a hardware-aware study on this machine, its report, and a simulation.

The study comes from a plugin through the ``hwaware_demo_study`` hook (the
optuna adapter runs digits CASH with ``HardwareAwareSampler``); the core never
imports a framework. The summary, the report and the simulation are the core's.

The simulation runs at 150 workers on one suite entry (the digits table on the
hetero-150 pool): time to quality of hwaware against tpe (what Optuna users run)
and random, with the oracle as the limit.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from hwaware_plugins._progress import progress_bar
from hwaware_plugins.cli._table import format_table
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hookspecs import DemoStudy

SIM_WORKERS = 150

DESCRIPTION = """\
1. a short hardware-aware study on the digits CASH problem over this machine's
   devices (HardwareAwareSampler of the optuna adapter), stored under --out;
2. a summary per subspace and OUT/report.html (as hwaware report writes it);
3. the scheduler simulation at 150 workers on a measured table of the suite:
   how much sooner hwaware reaches good models than tpe and random, with the
   oracle as the limit."""
"""The ``demo --help`` text: plain text, as argparse prints it verbatim."""


@dataclass(frozen=True)
class DemoPlan:
    """How much the demo does: study trials, simulation seeds and virtual hours."""

    trials: int
    seeds: int
    budget_hours: float


FULL = DemoPlan(trials=60, seeds=10, budget_hours=0.0004)
QUICK = DemoPlan(trials=16, seeds=3, budget_hours=0.0004)
SIM_SCHEDULERS: tuple[str, ...] = ("random", "tpe", "oracle", "hwaware")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``demo``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run a short hardware-aware Optuna study here, report it, and simulate 150 workers",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run (under a minute)")
    parser.add_argument(
        "--out", default="hwaware-demo", help="folder for the study and report (./hwaware-demo)"
    )
    parser.add_argument("--trials", type=int, default=None, help="study trials (60; quick 16)")
    # Hidden knobs for tests: simulation seeds and virtual budget.
    parser.add_argument("--seeds", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--budget-hours", type=float, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)
    return parser


def plan_of(args: argparse.Namespace) -> DemoPlan:
    """The plan the arguments ask for.

    :raises ConfigError: ``--trials`` or ``--seeds`` below 1, or a non-positive budget.
    """
    base = QUICK if args.quick else FULL
    plan = DemoPlan(
        trials=base.trials if args.trials is None else args.trials,
        seeds=base.seeds if args.seeds is None else args.seeds,
        budget_hours=base.budget_hours if args.budget_hours is None else args.budget_hours,
    )
    if plan.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {plan.trials}")
    if plan.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {plan.seeds}")
    if not plan.budget_hours > 0:
        raise ConfigError(f"--budget-hours must be > 0, got {plan.budget_hours}")
    return plan


def _prepare_out(path: str) -> tuple[Path, bool]:
    """The ``--out`` folder, created when missing; and whether this call created it."""
    out = Path(path)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create --out folder {path}: {exc.strerror}") from None
    return out, created


def run_study(out: Path, trials: int, *, quiet: bool) -> DemoStudy:
    """The demo study, run by the first plugin implementing ``hwaware_demo_study``.

    :raises ConfigError: no plugin runs one (the optuna adapter is not installed).
    """
    from hwaware_plugins._manager import get_plugin_manager

    hook = get_plugin_manager().hook.hwaware_demo_study
    result = hook(out=out, trials=trials, quiet=quiet)
    if result is None:
        raise ConfigError(
            "hwaware demo needs a plugin that runs its study: pip install hwaware-optuna "
            "scikit-learn"
        )
    return cast("DemoStudy", result)


def summary_table(study: Any) -> str:
    """The per-subspace table printed after the study."""
    from hwaware_plugins.reporting import records_from_trials
    from hwaware_plugins.reporting._summary import summarize_subspaces

    rows = [
        {
            "subspace": s.subspace,
            "trials": s.trials,
            "failed": s.failed,
            "best loss": "-" if s.best_loss is None else f"{s.best_loss:.4f}",
            "devices": ", ".join(s.devices),
            "time (s)": f"{s.time_s:.1f}",
        }
        for s in summarize_subspaces(records_from_trials(study.get_trials(deepcopy=False)))
    ]
    return format_table(rows, ["subspace", "trials", "failed", "best loss", "devices", "time (s)"])


def run_simulation(plan: DemoPlan, *, quiet: bool) -> dict[str, Any]:
    """The scheduler comparison at 150 workers on the digits table and the hetero-150 pool."""
    from hwaware_plugins.cli._demo_cash import data_file
    from hwaware_plugins.simulation import load_devices, load_table, run_benchmark

    table = load_table(data_file("data", "digits_cash.csv"))
    devices = load_devices(data_file("devices", "hetero-150.toml"))
    names = SIM_SCHEDULERS
    print(
        f"\nsimulating {SIM_WORKERS} workers (suite entry digits@hetero-150) replaying "
        f"{table.all_losses.size} measured trials: {', '.join(names)}, "
        f"{plan.seeds} seeds of {plan.budget_hours * 3600:.3g} virtual seconds each"
    )
    runs = len(names) + (4 if "oracle" in names else 0)  # the oracle: 3 target plans, EI, regret
    with progress_bar(plan.seeds * runs, label="simulation", quiet=quiet) as bar:
        return run_benchmark(
            table, devices, workers=SIM_WORKERS, seeds=plan.seeds,
            budget_hours=plan.budget_hours, schedulers=names,
            progress=lambda name, seed: bar.update(note=name),
        )  # fmt: skip


def comparison_text(report: dict[str, Any]) -> str:
    """The printed comparison: time to each target per scheduler, then hwaware's ratios."""
    labels = list(report["settings"]["targets"])
    rows = []
    for name, s in report["schedulers"].items():
        row = {"scheduler": name + (" (limit)" if name == "oracle" else "")}
        for label in labels:
            seconds = s["targets_hours"][label] * 3600
            missed = "" if s["targets_reached"][label] > 0.5 else " (not reached)"
            row[f"s to {label}"] = f"{seconds:.3g}{missed}"
        row["regret"] = f"{s['regret_auc']:.2f}"
        row["models/hour"] = f"{s['models_per_hour']:.3g}"
        rows.append(row)
    columns = ["scheduler", *[f"s to {label}" for label in labels], "regret", "models/hour"]
    lines = [format_table(rows, columns)]
    targets = ", ".join(f"{k} = loss {v:.4g}" for k, v in report["settings"]["targets"].items())
    lines.append(
        f"(virtual seconds, medians of {report['settings']['seeds']} seeds; targets: {targets}; "
        "regret: area under best loss minus the table's best, random = 1; oracle: at each "
        "target the soonest of its plans, one per target, and its least-regret plan)"
    )
    for name, r in report.get("ratios", {}).items():
        if name == "hwaware_vs_oracle":
            continue
        per = ", ".join(f"{k} {v:.2f}x" for k, v in r["targets"].items())
        regret = "n/a" if r["regret_auc"] is None else f"{r['regret_auc']:.2f}x"
        lines.append(
            f"{name.replace('_vs_', ' vs ')}: sooner to quality {r['time_to_target_gmean']:.2f}x "
            f"(geometric mean; {per}), regret {regret}, "
            f"models per hour {r['models_per_hour']:.2f}x"
        )
    for name, r in report.get("limit", {}).items():
        lines.append(
            f"limit: {name.replace('_vs_', ' vs ')} sooner to quality "
            f"{r['time_to_target_gmean']:.2f}x"
        )
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:
    """Study, summary, report, simulation; prints as it goes."""
    plan = plan_of(args)
    quiet = bool(getattr(args, "quiet", False))
    out, created = _prepare_out(args.out)
    started = time.monotonic()
    try:
        demo = run_study(out, plan.trials, quiet=quiet)
    except ConfigError:
        if created:  # a missing package or plugin leaves nothing behind
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    study = demo.study
    print()
    print(summary_table(study))
    from hwaware_plugins.reporting import best_loss_chart, render_report

    report_path = out / "report.html"
    _write(report_path, render_report(study))
    print(f"\nreport: {report_path}")
    print(f"  (again: {demo.report_command} --out {report_path})")
    sys.stdout.flush()
    comparison = run_simulation(plan, quiet=quiet)
    print(comparison_text(comparison))
    chart = out / "scheduler_best_loss.svg"
    _write(chart, best_loss_chart(comparison))
    print(f"best loss over virtual time: {chart}")
    print(f"demo finished in {time.monotonic() - started:.0f} s")
    return 0
