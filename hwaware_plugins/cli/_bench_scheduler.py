"""``hwaware bench scheduler``: schedulers on a simulated cluster, one entry or the whole suite."""

from __future__ import annotations

import argparse
import json
import math
import os
from typing import Any

from hwaware_plugins._progress import progress_bar
from hwaware_plugins.cli._table import format_table
from hwaware_plugins.errors import ConfigError

DEFAULT_LIST = "random,tpe,shadho,oracle,hwaware"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``scheduler`` benchmark."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "scheduler",
        help="compare schedulers on a simulated heterogeneous cluster replaying measured trials",
    )
    parser.add_argument("--table", default=None, help="trial table CSV (subspace, family, ...)")
    parser.add_argument("--devices", default=None, help="declared-device TOML file")
    parser.add_argument(
        "--suite",
        action="store_true",
        help="run every packaged table on every packaged pool (instead of --table/--devices)",
    )
    parser.add_argument("--suite-tables", default=None, help="with --suite: only these tables")
    parser.add_argument("--suite-pools", default=None, help="with --suite: only these pools")
    parser.add_argument("--workers", type=int, default=None, help="worker slots (default: file's)")
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..K-1 (default 20)")
    parser.add_argument(
        "--budget-hours",
        type=float,
        default=None,
        help="virtual time budget (default: 12 x the table's mean trial runtime)",
    )
    parser.add_argument(
        "--targets",
        default="q0.02,q0.005,best",
        help="quality targets: qF (loss quantile F of the table) or best "
        "(default q0.02,q0.005,best)",
    )
    parser.add_argument(
        "--target-loss", type=float, default=None, help="legacy single target (default: q0.005)"
    )
    parser.add_argument(
        "--schedulers", default=DEFAULT_LIST, help=f"comma-separated (default {DEFAULT_LIST})"
    )
    parser.add_argument("--jobs", type=int, default=1, help="simulations run in parallel processes")
    parser.add_argument("--json", dest="json_out", default=None, help="write the report here")
    parser.add_argument(
        "--svg",
        default=None,
        help="write a best-loss-over-time plot here (with --suite: a folder, one plot per entry)",
    )
    parser.set_defaults(handler=run)
    return parser


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _check_schedulers(names: list[str]) -> None:
    from hwaware_plugins._manager import components

    known = {c.name for c in components() if c.kind == "scheduler"}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown scheduler(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


def run(args: argparse.Namespace) -> int:
    """Simulate, print a table, write the JSON report (and the plots)."""
    if args.target_loss is not None and not math.isfinite(args.target_loss):
        raise ConfigError(f"--target-loss must be finite, got {args.target_loss}")
    names = _names(args.schedulers)
    _check_schedulers(names)
    if args.suite:
        if args.table or args.devices:
            raise ConfigError("give either --suite or --table and --devices, not both")
        return _run_suite(args, names)
    if not args.table or not args.devices:
        raise ConfigError("give --table and --devices (or --suite for the packaged suite)")
    _check_output(args.json_out, "--json")
    _check_output(args.svg, "--svg")
    report = _simulate(args, names, args.table, args.devices, label="simulating")
    _print_report(report)
    _judge(report)
    rows = _verdict_rows(os.path.basename(str(args.table)), report)
    if rows:
        _print_verdicts(rows, args.targets)
    _print_violations({"": report["limit_violations"]}, names)
    if args.json_out:
        _write(args.json_out, _json(report))
    if args.svg:
        from hwaware_plugins.reporting import best_loss_chart

        _write(args.svg, best_loss_chart(report))
    return 0


def _check_output(path: str | None, option: str, *, folder: bool = False) -> None:
    """Refuse an output path that cannot be written before anything is simulated."""
    if not path:
        return
    if folder:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{option} {path}: cannot make that folder ({exc.strerror})") \
                from None
        return
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path) or not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise ConfigError(f"{option} {path}: not a file that can be written here")


def _judge(report: dict[str, Any]) -> None:
    from hwaware_plugins.simulation._verdict import limit_violations, verdicts

    report["verdicts"] = verdicts(report)
    report["limit_violations"] = limit_violations(report)


def _json(report: Any) -> str:
    """The report as strict JSON: a value that is not finite is written as ``null``."""
    return json.dumps(_finite(report), indent=2, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _verdict_rows(label: str, report: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "entry": label,
            "vs": baseline,
            "hwaware": f"{v['hwaware']:.3g}x",
            "oracle": _ratio(v['oracle']),
            "asked": f">={v['bound']:.3g}x",
            "worst target": f"{v['worst_target']:.3g}x",
            "regret": _ratio(v['regret']),
            "holds": "yes" if v["ok"] else "NO",
        }
        for baseline, v in report["verdicts"].items()
    ]


def _print_verdicts(rows: list[dict[str, str]], targets: str) -> None:
    columns = ["entry", "vs", "hwaware", "oracle", "asked", "worst target", "regret", "holds"]
    print(format_table(rows, columns))
    held = sum(r["holds"] == "yes" for r in rows)
    print(
        f"time to target: geometric mean over {targets}; asked: 1.5x, or sqrt(oracle) "
        f"where the oracle gains < 2.25x; holds on {held}/{len(rows)}"
    )


def _print_violations(violations: dict[str, list[str]], names: list[str]) -> None:
    """Say where the oracle is not the limit (its figures are then not a bound)."""
    broken = {k: lines for k, lines in violations.items() if lines}
    if "oracle" in names:
        print(
            "oracle is the limit (soonest at every target, least regret) on "
            f"{len(violations) - len(broken)}/{len(violations)} "
            f"{'entries' if len(violations) > 1 else 'entry'}"
        )
    for label, lines in broken.items():
        print(f"  {label + ': ' if label else ''}" + "; ".join(lines))


def _simulate(
    args: argparse.Namespace, names: list[str], table_path: Any, devices_path: Any, *, label: str
) -> dict[str, Any]:
    from hwaware_plugins.simulation import load_devices, load_table, run_benchmark
    from hwaware_plugins.simulation._benchmark import shown_source

    table = load_table(table_path)
    devices = load_devices(devices_path)
    targets = _names(args.targets)
    runs = len(names) + (len(targets) + 1 if "oracle" in names else 0)  # oracle: + EI, ladder
    bar = progress_bar(args.seeds * runs, label=label, quiet=getattr(args, "quiet", False))

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
            targets=targets,
            schedulers=names,
            jobs=args.jobs,
            progress=progress,
        )
    report["settings"]["devices"] = shown_source(str(devices_path))
    report["settings"]["schedulers"] = list(names)
    return report


def _fmt(value: float | None, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def _ratio(value: float | None) -> str:
    """A ratio as ``2.1x``; ``n/a`` where it has no value (e.g. no regret on either side)."""
    return "n/a" if value is None else f"{value:.3g}x"


def _print_report(report: dict[str, Any]) -> None:
    labels = list(report["settings"]["targets"])
    columns = ["scheduler", *[f"h to {label}" for label in labels], "regret", "models/h"]
    rows = []
    for name, s in report["schedulers"].items():
        row = {"scheduler": name, "regret": f"{s['regret_auc']:.3g}"}
        for label in labels:
            hours, reached = s["targets_hours"][label], s["targets_reached"][label]
            flag = "" if reached > 0.5 else " (not reached)"
            row[f"h to {label}"] = f"{hours:.3g}{flag}"
        row["models/h"] = f"{s['models_per_hour']:.4g}"
        rows.append(row)
    print(format_table(rows, columns))
    for name, r in report.get("ratios", {}).items():
        per = ", ".join(f"{k} {_ratio(v)}" for k, v in r.get("targets", {}).items())
        print(
            f"{name}: time to target {_ratio(r.get('time_to_target_gmean'))} (gmean; {per}), "
            f"regret {_ratio(r.get('regret_auc'))}, models per hour {_ratio(r['models_per_hour'])}"
        )
    for name, r in report.get("limit", {}).items():
        print(f"limit {name}: time to target {_ratio(r.get('time_to_target_gmean'))} (gmean)")
    if "oracle" in report["schedulers"]:
        print(
            "oracle (the limit): per target, the soonest of its policies (one per target: "
            "that target's plan first); regret: its best policy"
        )
    budget = report["settings"]["budget_hours"]
    print(f"budget {budget:.4g} virtual h; a target not reached counts as the budget")


def _run_suite(args: argparse.Namespace, names: list[str]) -> int:
    try:
        from hwaware_plugins.simulation._suite import suite_entries
    except ImportError:  # pragma: no cover - the registry ships with the package data
        raise ConfigError(
            "this installation has no packaged suite; use --table and --devices"
        ) from None

    entries = suite_entries(
        tables=None if args.suite_tables is None else _names(args.suite_tables),
        pools=None if args.suite_pools is None else _names(args.suite_pools),
    )
    _check_output(args.json_out, "--json")
    _check_output(args.svg, "--svg", folder=True)
    reports: dict[str, Any] = {}
    rows = []
    for number, entry in enumerate(entries, start=1):
        report = _simulate(
            args,
            names,
            entry.table_path,
            entry.pool_path,
            label=f"{entry.label} ({number}/{len(entries)})",
        )
        _judge(report)
        reports[entry.label] = report
        rows.extend(_verdict_rows(entry.label, report))
        if args.svg:
            from hwaware_plugins.reporting import best_loss_chart

            title = f"{entry.label}: median best loss, {args.seeds} seeds"
            _write(
                os.path.join(args.svg, f"{entry.label}.svg"), best_loss_chart(report, title=title)
            )
    if rows:
        _print_verdicts(rows, args.targets)
        _print_violations({k: r["limit_violations"] for k, r in reports.items()}, names)
    else:  # no rule to apply (it needs hwaware and a baseline): each entry's own figures
        for label, report in reports.items():
            print(f"{label}:")
            _print_report(report)
        print("no acceptance verdict: it needs hwaware and at least one of random, tpe, shadho")
    if args.json_out:
        _write(args.json_out, _json(reports))
    return 0


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
