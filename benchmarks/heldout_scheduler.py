"""Held-out scheduling check: generated CASH-like tables and pools that are not in the repository.

Each case draws, from its own seed, a table (4-12 subspaces over families
with different loss distributions, row counts and runtimes; the best rows in
a random family) and a 150-slot pool (2-4 classes with random class mixes
and per-family speedups 0.5-30x, the speedups hidden from every scheduler
but the oracle), writes them in the formats the CLI accepts (CSV and TOML)
and runs ``hwaware bench scheduler`` on them with the default schedulers and
hwaware's defaults. Nothing here is tuned to the cases. Prints one row per
case and baseline, like the suite. Run from the repository root:

    nice -n 5 python benchmarks/heldout_scheduler.py --cases 6 --seeds 5 --out /tmp/heldout
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

FAMILIES = ("svm", "rf", "knn", "logreg", "mlp", "cnn", "hgb", "gp")
GPU_FAMILIES = frozenset({"mlp", "cnn", "gp"})


def make_table(rng: np.random.Generator, path: Path) -> None:
    """A CASH-like table: per subspace logit-normal losses and lognormal runtimes."""
    n_sub = int(rng.integers(4, 13))
    rows = int(rng.choice([60, 100, 200]))
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["subspace", "family", "x", "loss", "runtime_s"])
        for s in range(n_sub):
            family = str(rng.choice(FAMILIES))
            centre = rng.normal(-1.5, 1.0)  # logit of a typical loss
            spread = rng.uniform(0.2, 1.2)
            skew = rng.uniform(0.0, 2.0)  # a heavier good tail in some subspaces
            runtime = float(np.exp(rng.normal(-1.5, 1.0)))
            x = rng.uniform(0, 1, rows)
            z = centre + spread * rng.standard_normal(rows) - skew * rng.exponential(0.3, rows)
            loss = np.round(1.0 / (1.0 + np.exp(-z)), 4)  # results come in steps, as measured
            times = runtime * np.exp(rng.normal(0.0, 0.5, rows) + 0.8 * x)
            for xi, li, ti in zip(x, loss, times, strict=True):
                out.writerow([f"{family}_{s}", family, f"{xi:.4f}", f"{li:.4f}", f"{ti:.5f}"])


def make_pool(rng: np.random.Generator, path: Path) -> None:
    """A 150-slot pool of 2-4 classes, random class mixes, random per-family speedups."""
    n_classes = int(rng.integers(2, 5))
    shares = rng.dirichlet(np.ones(n_classes))
    slots = np.maximum(1, np.round(shares * 150)).astype(int)
    slots[-1] = max(1, 150 - int(slots[:-1].sum()))
    lines = []
    for c in range(n_classes):
        gpu = c < n_classes // 2 + (1 if rng.random() < 0.5 else 0)
        declared = float(rng.uniform(1.5, 6.0)) if gpu else float(rng.uniform(0.5, 1.2))
        lines += [
            "[[device]]",
            f'kind = "{"gpu" if gpu else "cpu"}"',
            f'name = "class{c}"',
            f'device_class = "class{c}"',
            "count = 1",
            f"slots = {int(slots[c])}",
            "memory_gb = 16",
            f'host = "h{c}"',
            f"speed = {declared:.2f}",
            "[device.speedup]",
        ]
        for family in FAMILIES:
            if gpu and family in GPU_FAMILIES:
                value = float(np.exp(rng.uniform(np.log(3.0), np.log(30.0))))
            else:
                value = float(rng.uniform(0.5, 1.3))
            lines.append(f"{family} = {value:.2f}")
        lines.append("")
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Generate the cases, run the benchmark on each, print the verdicts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-case", type=int, default=1000, help="seed of the first case")
    parser.add_argument("--schedulers", default="random,tpe,shadho,oracle,hwaware")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("heldout"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from hwaware_plugins.simulation._verdict import limit_violations, verdicts

    held = total = 0
    for case in range(args.first_case, args.first_case + args.cases):
        rng = np.random.default_rng(case)
        table, pool, report = (args.out / f"case{case}{ext}" for ext in (".csv", ".toml", ".json"))
        make_table(rng, table)
        make_pool(rng, pool)
        command = [sys.executable, "-m", "hwaware_plugins.cli", "-q", "bench", "scheduler"]
        command += ["--table", str(table), "--devices", str(pool), "--workers", "150"]
        command += ["--seeds", str(args.seeds), "--jobs", str(args.jobs)]
        command += ["--schedulers", args.schedulers, "--json", str(report)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        data = json.loads(report.read_text())
        for name, v in verdicts(data).items():
            total += 1
            held += bool(v["ok"])
            oracle = "-" if v["oracle"] is None else f"{v['oracle']:.3g}x"
            print(
                f"case{case}  vs {name:7s} hwaware {v['hwaware']:.3g}x  oracle {oracle}  "
                f"asked >={v['bound']:.3g}x  worst target {v['worst_target']:.3g}x  "
                f"regret {v['regret'] or 0:.3g}x  {'yes' if v['ok'] else 'NO'}",
                flush=True,
            )
        for line in limit_violations(data):
            print(f"case{case}  oracle not the limit: {line}")
    print(f"held on {held}/{total} case-baseline pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
