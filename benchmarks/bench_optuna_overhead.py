"""Overhead of HardwareAwareSampler over its base sampler (in-memory storage, CPU-only devices).

A conditional two-branch objective of negligible cost runs ``--trials`` trials
with the bare base sampler and with ``HardwareAwareSampler(base)``, side by
side and interleaved, ``--repeats`` times; the medians are compared:

- TPE: wall-time ratio hwaware/bare (bound: <= 1.15);
- Random: added milliseconds per trial (bound: <= 2 ms).

The device pool keeps its lease state in files; by default the benchmark puts
them on a tmpfs (``/dev/shm``), like the pool's own default
``$XDG_RUNTIME_DIR/hwaware`` on systemd hosts. ``--state-dir /tmp`` measures a
disk-backed folder instead (each lease then costs a slower ``os.replace``).

Usage::

    nice .venv/bin/python benchmarks/bench_optuna_overhead.py --trials 1000 --repeats 5

Exit code 1 when a bound is missed (``--no-check`` to only report).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from hwaware_optuna import HardwareAwareSampler
from optuna.samplers import BaseSampler, RandomSampler, TPESampler

DEVICES_TOML = """\
[[device]]
kind = "cpu"
name = "bench-cpu"
cores = 1
"""

TPE_RATIO_BOUND = 1.15
RANDOM_ADDED_MS_BOUND = 2.0


def objective(trial: optuna.trial.Trial) -> float:
    """Two branches with the same parameter types (a log float and an int), negligible cost.

    Symmetric on purpose: TPE's cost differs between float and int parameters,
    so asymmetric branches would measure how the scheduler splits trials
    between them rather than the sampler's overhead.
    """
    if trial.suggest_categorical("classifier", ["svm", "forest"]) == "svm":
        c = trial.suggest_float("C", 1e-3, 1e3, log=True)
        degree = trial.suggest_int("degree", 1, 5)
        return abs(math.log10(c)) + abs(degree - 3) / 2
    rate = trial.suggest_float("learning_rate", 1e-4, 1.0, log=True)
    depth = trial.suggest_int("depth", 1, 12)
    return abs(math.log10(rate) + 2) + abs(depth - 6) / 3


def run_once(sampler: BaseSampler, n_trials: int) -> tuple[float, float]:
    """Wall and CPU seconds of one ``optimize`` of ``n_trials`` trials."""
    study = optuna.create_study(sampler=sampler)
    wall, cpu = time.perf_counter(), time.process_time()
    study.optimize(objective, n_trials=n_trials)
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(
    make_base: Callable[[int], BaseSampler],
    *,
    devices: Path,
    state_dir: Path,
    n_trials: int,
    repeats: int,
) -> dict[str, list[float]]:
    """Interleaved bare/hwaware wall and CPU seconds, one pair per repeat."""
    times: dict[str, list[float]] = {"bare": [], "aware": [], "bare_cpu": [], "aware_cpu": []}
    warm_up = HardwareAwareSampler(
        make_base(-1), devices=devices, seed=0, state_dir=state_dir, pool_name="bench-warm-up"
    )
    run_once(warm_up, 20)  # one-time imports and plugin loading are not per-trial costs
    for repeat in range(repeats):
        order = ("aware", "bare") if repeat % 2 else ("bare", "aware")
        for name in order:
            base = make_base(repeat)
            sampler = base if name == "bare" else HardwareAwareSampler(
                base, devices=devices, seed=repeat, state_dir=state_dir,
                pool_name=f"bench-{repeat}",
            )
            wall, cpu = run_once(sampler, n_trials)
            times[name].append(wall)
            times[f"{name}_cpu"].append(cpu)
            line = f"  repeat {repeat} {name:5s} {wall:7.2f} s wall {cpu:7.2f} s cpu"
            print(line, file=sys.stderr)
    return times


def main(argv: list[str] | None = None) -> int:
    """Run both comparisons, print a summary, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="parent folder of the pool's lease state (default: /dev/shm when present)",
    )
    parser.add_argument("--no-check", action="store_true", help="do not fail on a missed bound")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    with tempfile.TemporaryDirectory(dir=args.state_dir) as folder:
        devices = Path(folder) / "cpu-only.toml"
        devices.write_text(DEVICES_TOML)
        common = {"devices": devices, "state_dir": Path(folder) / "pool",
                  "n_trials": args.trials, "repeats": args.repeats}
        print("TPE", file=sys.stderr)
        tpe = measure(lambda s: TPESampler(seed=max(s, 0)), **common)
        print("Random", file=sys.stderr)
        rnd = measure(lambda s: RandomSampler(seed=max(s, 0)), **common)

    med = statistics.median
    tpe_ratio = med(tpe["aware"]) / med(tpe["bare"])
    pairs = zip(rnd["aware"], rnd["bare"], strict=True)
    random_added = med([(a - b) / args.trials * 1e3 for a, b in pairs])
    cpu_pairs = zip(rnd["aware_cpu"], rnd["bare_cpu"], strict=True)
    figures = {
        "trials": args.trials,
        "repeats": args.repeats,
        "state_dir": str(args.state_dir or tempfile.gettempdir()),
        "tpe": {
            "bare_s": med(tpe["bare"]),
            "hwaware_s": med(tpe["aware"]),
            "ratio": tpe_ratio,
            "cpu_ratio": med(tpe["aware_cpu"]) / med(tpe["bare_cpu"]),
            "bound": TPE_RATIO_BOUND,
        },
        "random": {
            "bare_s": med(rnd["bare"]),
            "hwaware_s": med(rnd["aware"]),
            "added_ms_per_trial": random_added,
            "added_cpu_ms_per_trial": med([(a - b) / args.trials * 1e3 for a, b in cpu_pairs]),
            "bound_ms": RANDOM_ADDED_MS_BOUND,
        },
    }
    print(json.dumps(figures, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    ok = tpe_ratio <= TPE_RATIO_BOUND and random_added <= RANDOM_ADDED_MS_BOUND
    return 0 if ok or args.no_check else 1


if __name__ == "__main__":
    raise SystemExit(main())
