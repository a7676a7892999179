"""Measure the suite's extra CASH tables (torch_digits, synthetic) and write one CSV row per trial.

The families, datasets and ranges live in benchmarks/cash_families.py; this script samples
configurations, runs them on the CPU with single-threaded numerical libraries and writes the
table the scheduler simulator replays (format: hwaware_plugins/simulation/_table.py). Rows
have the columns ``subspace, family, index, seed, <param columns>, capped, loss, runtime_s,
wall_s`` like make_cash_table.py's.

Configuration ``index`` of subspace ``s`` is drawn from ``numpy.random.default_rng((seed,
position of s, index))``, so it never depends on which others ran before it: the script
resumes from its partial file (``<out stem>.partial.csv``), extends a finished table when
``--per-subspace`` grows, and writes ``--out`` (a temporary file, then a rename) only once
every pair is present and valid.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/make_suite_tables.py --table all \\
        --per-subspace 100
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling cash_families module

from cash_families import TABLES, Outcome

DATA = Path(__file__).resolve().parent / "data"


class Table(Protocol):
    """What the driver needs of a table definition: cash_families.TableSpec, or the digits
    table of make_cash_table.py."""

    @property
    def name(self) -> str:
        """Short name, for progress lines."""

    @property
    def columns(self) -> tuple[str, ...]:
        """The CSV header."""

    @property
    def order(self) -> Sequence[str]:
        """Subspace names in table order."""

    def family(self, subspace: str) -> str:
        """The subspace's workload family."""

    def sample(self, seed: int, subspace: str, index: int) -> tuple[dict[str, Any], int]:
        """Configuration ``index`` of ``subspace``: ``(params, model_seed)``."""

    def prepare(self) -> Any:
        """The data split (loaded once per run)."""

    def measure(self, subspace: str, params: Mapping[str, Any], model_seed: int, split: Any
                ) -> Outcome:  # fmt: skip
        """Fit and score one configuration on the CPU."""


def partial_path(out: Path) -> Path:
    """Where rows accumulate until the table is complete."""
    return out.with_name(out.stem + ".partial.csv")


def read_rows(spec: Table, path: Path) -> list[dict[str, str]]:
    """Rows of a table written by this script; raises ValueError on a foreign header."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != spec.columns:
            raise ValueError(f"{path} has other columns than table {spec.name}; move it away")
        return list(reader)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def make_row(spec: Table, subspace: str, index: int, seed: int,
             params: Mapping[str, object], out: Outcome) -> dict[str, str]:  # fmt: skip
    """One CSV row; parameters a subspace does not sample are empty."""
    values = {
        "subspace": subspace, "family": spec.family(subspace), "index": index,
        "seed": seed, **params, "capped": out.capped, "loss": round(out.loss, 6),
        "runtime_s": round(out.runtime_s, 6), "wall_s": round(out.wall_s, 6),
    }  # fmt: skip
    return {column: _cell(values.get(column)) for column in spec.columns}


def plan(per_subspace: int, subspaces: Sequence[str]) -> Iterator[tuple[str, int]]:
    """Index-major order, so a partial run (and machine noise) spreads over all subspaces."""
    for index in range(per_subspace):
        for subspace in subspaces:
            yield subspace, index


def validate(rows: Sequence[Mapping[str, str]], per_subspace: int, subspaces: Sequence[str]
             ) -> None:  # fmt: skip
    """Raise ValueError unless every ``(subspace, index)`` is present with sane measurements."""
    present = {(r["subspace"], int(r["index"])) for r in rows}
    missing = [pair for pair in plan(per_subspace, subspaces) if pair not in present]
    if missing:
        raise ValueError(f"{len(missing)} configurations missing, first {missing[0]}")
    for r in rows:
        loss, runtime = float(r["loss"]), float(r["runtime_s"])
        if not (0.0 <= loss <= 1.0 and math.isfinite(runtime) and runtime > 0.0):
            raise ValueError(f"bad measurement in row {r['subspace']}#{r['index']}: {r}")


def write_table(spec: Table, rows: Sequence[Mapping[str, str]], out: Path) -> None:
    """Write rows sorted by (subspace order, index) to ``out`` atomically."""
    order = list(spec.order)
    ordered = sorted(rows, key=lambda r: (order.index(r["subspace"]), int(r["index"])))
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=spec.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(ordered)
    os.replace(tmp, out)


def limit_threads() -> None:
    """Hold torch and the BLAS/OpenMP pools to one thread, so CPU time is one core's."""
    import torch

    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # OMP_NUM_THREADS=1 in the environment still applies.
        return
    threadpool_limits(limits=1)


def run(spec: Table, *, out: Path, per_subspace: int, seed: int,
        subspaces: Sequence[str] | None = None, quiet: bool = False) -> int:  # fmt: skip
    """Evaluate every missing configuration of ``spec``, then write ``out``; returns how many ran.

    Resumes from the partial file, else extends an existing ``out``; the partial file is removed
    once ``out`` is complete. Costs the fits (about 0.1-0.5 CPU-seconds each on average). Two
    runs must not share one ``out`` at the same time.
    """
    chosen = list(spec.order) if subspaces is None else list(subspaces)
    limit_threads()
    partial = partial_path(out)
    rows: list[dict[str, str]] = []
    for source in (partial, out):
        if source.exists():
            rows = read_rows(spec, source)
            break
    if any(int(r["seed"]) != seed for r in rows):
        raise ValueError(f"{partial} was made with another --seed; pass that seed or move it")
    if not partial.exists():
        write_table(spec, rows, partial)
    done = {(r["subspace"], int(r["index"])) for r in rows}
    todo = [pair for pair in plan(per_subspace, chosen) if pair not in done]
    split = spec.prepare()
    start = time.perf_counter()
    with partial.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=spec.columns, lineterminator="\n")
        for k, (subspace, index) in enumerate(todo, 1):
            params, model_seed = spec.sample(seed, subspace, index)
            outcome = spec.measure(subspace, params, model_seed, split)
            row = make_row(spec, subspace, index, seed, params, outcome)
            writer.writerow(row)
            handle.flush()
            rows.append(row)
            if not quiet:
                eta = (time.perf_counter() - start) / k * (len(todo) - k)
                print(f"[{spec.name} {k}/{len(todo)}] {subspace}#{index} loss={row['loss']} "
                      f"cpu={row['runtime_s']}s eta={eta / 60:.1f}min", flush=True)  # fmt: skip
    validate(rows, per_subspace, chosen)
    write_table(spec, rows, out)
    partial.unlink()
    if not quiet:
        print(f"wrote {len(rows)} rows to {out}", flush=True)
    return len(todo)


def summary(spec: Table, rows: Sequence[Mapping[str, str]]) -> str:
    """Markdown tables of ``rows``: per subspace (rows, min and median loss, median and max
    runtime_s, capped count) and per family (best loss, median runtime_s, share of the rows
    within the table's 2% loss quantile). Cost: O(rows log rows)."""
    import numpy as np

    def stats(group: Sequence[Mapping[str, str]]) -> tuple[Any, Any]:
        return (np.array([float(r["loss"]) for r in group]),
                np.array([float(r["runtime_s"]) for r in group]))  # fmt: skip

    all_losses, _ = stats(rows)
    q2 = float(np.quantile(all_losses, 0.02, method="inverted_cdf"))
    lines = [f"{spec.name}: {len(rows)} rows, best loss {all_losses.min():.4f}, "
             f"2% quantile {q2:.4f}", "",
             "| subspace | family | rows | min loss | median loss | median runtime_s "
             "| max runtime_s | capped |", "|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name in spec.order:
        group = [r for r in rows if r["subspace"] == name]
        if not group:
            continue
        loss, runtime = stats(group)
        capped = sum(r["capped"] == "1" for r in group) if group[0]["capped"] else "-"
        lines.append(f"| {name} | {spec.family(name)} | {len(group)} | {loss.min():.4f} | "
                     f"{np.median(loss):.4f} | {np.median(runtime):.3f} | {runtime.max():.3f} "
                     f"| {capped} |")  # fmt: skip
    lines += ["", "| family | rows | best loss | median runtime_s | rows within q2 |",
              "|---|---:|---:|---:|---:|"]  # fmt: skip
    for family in dict.fromkeys(spec.family(name) for name in spec.order):
        group = [r for r in rows if spec.family(r["subspace"]) == family]
        if not group:
            continue
        loss, runtime = stats(group)
        lines.append(f"| {family} | {len(group)} | {loss.min():.4f} | "
                     f"{np.median(runtime):.3f} | {int((loss <= q2).sum())} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; exit status 2 on bad arguments or a foreign partial file."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--table", default="all", choices=[*TABLES, "all"],
                        help="which table to make (default: all, one after the other)")  # fmt: skip
    parser.add_argument("--per-subspace", type=int, default=100, help="configurations each")
    parser.add_argument("--seed", type=int, default=0, help="seed of configuration sampling")
    parser.add_argument("--out-dir", type=Path, default=DATA,
                        help="folder of the CSVs (partial rows go next to them)")  # fmt: skip
    parser.add_argument("--subspaces", default="",
                        help="comma-separated subset of the table's subspaces (one table only)")
    parser.add_argument("--summary", action="store_true",
                        help="print Markdown summaries of the existing tables and exit")
    args = parser.parse_args(argv)
    specs = list(TABLES.values()) if args.table == "all" else [TABLES[args.table]]
    chosen = [s.strip() for s in args.subspaces.split(",") if s.strip()] or None
    if chosen is not None:
        if len(specs) != 1:
            parser.error("--subspaces needs one --table")
        unknown = sorted(set(chosen) - set(specs[0].subspaces))
        if unknown:
            parser.error(f"unknown subspaces {unknown} of table {specs[0].name}; choose from "
                         f"{', '.join(specs[0].subspaces)}")  # fmt: skip
    if args.per_subspace < 1:
        parser.error("--per-subspace must be at least 1")
    if args.summary:
        for spec in specs:
            print(summary(spec, read_rows(spec, args.out_dir / spec.filename)) + "\n")
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for spec in specs:
            run(spec, out=args.out_dir / spec.filename, per_subspace=args.per_subspace,
                seed=args.seed, subspaces=chosen)  # fmt: skip
    except ValueError as exc:
        print(f"make_suite_tables: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
