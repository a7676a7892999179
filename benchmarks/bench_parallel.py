"""Parallel efficiency, side by side: every hwaware path against what users run instead.

N fixed-duration trials on K slots, from an objective module that imports its
framework and numpy (``_parallel_objectives.py``; ``--torch`` imports torch too),
through:

- ``optuna n_jobs``: plain Optuna, ``TPESampler``, ``study.optimize(n_jobs=K)`` (the floor);
- ``hwaware sampler n_jobs``: ``HardwareAwareSampler(devices=FILE)``, ``n_jobs=K``;
- ``hwaware optimize``: ``hwaware_optuna.optimize(study, devices=FILE)`` (worker processes);
- ``hyperopt Trials``: plain sequential ``Trials()`` with ``tpe.suggest``;
- ``HardwareAwareTrials``: ``HardwareAwareTrials(devices=FILE)`` with ``tpe.suggest``;
- ``ray tune``: Ray Tune's ``OptunaSearch`` behind ``ConcurrencyLimiter(K)``, 1 CPU per
  trial (an optional benchmark dependency: ``pip install 'ray[tune]==2.60.0'``; skipped
  when missing); its ``ray.init`` is reported as start-up and counted end to end.

Each path runs on a file of K declared CPU slots (``kind = "cpu"``, ``count = K``) and a
file of K declared GPUs without UUIDs (the README's format; the objective does not use
CUDA, so this checks placement and pinning by index, not GPU speed). Every measurement
runs in a fresh interpreter with its own lease state, optionally beside ``--load``
busy processes. A last workload calls ``joblib.Parallel(n_jobs=-1)`` inside the objective
on one 2-core slot: ``study.optimize`` against ``hwaware_optuna.optimize``, with the
lines each wrote to stderr.

Reported per cell: the median wall time over ``--repeats`` (end to end, worker start-up
included), the ideal (ceil(N/K) x duration), the most trials that ran at once, and the
per-trial overhead after warm-up: the median gap between one trial's end and the next
trial's start on the same worker; and, apart, the one-time import of the adapter's names
(``from hwaware_optuna import optimize``), which a script pays at its top, before the call;
and the whole script's wall time, from interpreter start to exit (imports, the call, and
what runs at exit, such as a joblib pool's close).

    python benchmarks/bench_parallel.py --repeats 3 --load 1 \
        --json benchmarks/results/parallel_load1.json

``--storage sqlite`` runs the Optuna paths on an SQLite file instead (the storage most
Optuna users persist studies in); ``--no-joblib`` leaves the joblib workload out.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OPTUNA_PATHS = ("optuna n_jobs", "hwaware sampler n_jobs", "hwaware optimize")
HYPEROPT_PATHS = ("hyperopt Trials", "HardwareAwareTrials")
DEVICE_PATHS = frozenset({"hwaware sampler n_jobs", "hwaware optimize", "HardwareAwareTrials"})
ALL_PATHS = (*OPTUNA_PATHS, *HYPEROPT_PATHS, "ray tune")

CPU_FILE = """[[device]]
kind = "cpu"
name = "cpu-slot"
count = {k}
"""
GPU_FILE = """[[device]]
kind = "gpu"
name = "A100-40GB"
count = {k}
memory_gb = 40
speed = 4.0
"""
JOBLIB_FILE = """[[device]]
kind = "cpu"
name = "cpu-2core"
cores = 2
slots = 1
"""


@dataclass
class Run:
    """One measurement: a path on one workload, device file and load."""

    workload: str
    devices: str
    path: str
    load: int
    wall_s: float
    startup_s: float = 0.0
    max_concurrent: int = 0
    overhead_ms: float | None = None
    stderr_lines: int = 0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# -- child side ---------------------------------------------------------------------------


def _child(args: argparse.Namespace) -> dict[str, Any]:
    import _parallel_objectives as objectives
    import numpy as np
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    n, k, path, devices = args.trials, args.slots, args.path, args.device_file
    # The coordinator's own imports (framework, adapter) come before the clock, as they
    # sit at the top of a user's script (``from hwaware_optuna import optimize``): the
    # clock measures the optimize/fmin/fit call. Their one-time cost is reported apart.
    imported = time.perf_counter()
    if path in HYPEROPT_PATHS:
        import hyperopt  # noqa: F401
        from hwaware_hyperopt import HardwareAwareTrials
    elif path == "ray tune":
        import ray.tune.search.optuna
    elif path != "optuna n_jobs" and path != "joblib study.optimize":
        from hwaware_optuna import HardwareAwareSampler, optimize  # noqa: F401
    imported = time.perf_counter() - imported
    startup = 0.0
    started_at = time.time()
    started = time.perf_counter()
    if path in OPTUNA_PATHS or path == "joblib study.optimize" or path == "joblib optimize":
        joblib = path.startswith("joblib")
        objective = objectives.joblib_objective if joblib else objectives.optuna_objective
        if path in ("optuna n_jobs", "joblib study.optimize"):
            study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0),
                                        storage=_storage_url(args, joblib))
            study.optimize(objective, n_trials=n, n_jobs=1 if joblib else k)
        else:
            import hwaware_optuna

            sampler = hwaware_optuna.HardwareAwareSampler(devices=devices, seed=0)
            study = optuna.create_study(sampler=sampler, storage=_storage_url(args, joblib))
            if path == "hwaware sampler n_jobs":
                study.optimize(objective, n_trials=n, n_jobs=k)
            else:
                hwaware_optuna.optimize(study, objective, n_trials=n, devices=devices)
        done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    elif path in HYPEROPT_PATHS:
        from hyperopt import Trials, fmin, hp, tpe

        if path == "hyperopt Trials":
            trials: Any = Trials()
        else:
            from hwaware_hyperopt import HardwareAwareTrials

            trials = HardwareAwareTrials(devices=devices)
        fmin(objectives.hyperopt_objective, {"x": hp.uniform("x", -1, 1)}, algo=tpe.suggest,
             max_evals=n, trials=trials, rstate=np.random.default_rng(0),
             show_progressbar=False)
        done = sum(r.get("status") == "ok" for r in trials.results)
        if hasattr(trials, "close"):
            trials.close()
    elif path == "ray tune":
        import ray
        from ray import tune
        from ray.tune.search import ConcurrencyLimiter
        from ray.tune.search.optuna import OptunaSearch

        passed = {name: os.environ[name] for name in
                  ("HWAWARE_BENCH_LOG", "HWAWARE_BENCH_SLEEP", "HWAWARE_BENCH_TORCH",
                   "HWAWARE_BENCH_FRAMEWORK")}
        ray.init(num_cpus=k, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR", runtime_env={"env_vars": passed})
        startup = time.perf_counter() - started
        searcher = ConcurrencyLimiter(OptunaSearch(seed=0), max_concurrent=k)
        tuner = tune.Tuner(
            tune.with_resources(objectives.ray_objective, {"cpu": 1}),
            param_space={"x": tune.uniform(-1.0, 1.0)},
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=n, metric="loss",
                                        mode="min"),
            run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="ray-bench-"),
                                      verbose=0),
        )
        grid = tuner.fit()
        done = sum(result.error is None for result in grid)
    else:
        raise SystemExit(f"unknown path {path!r}")
    wall = time.perf_counter() - started
    if path == "ray tune":
        ray.shutdown()
    return {"wall_s": wall, "startup_s": startup, "completed": done, "started_at": started_at,
            "ended_at": started_at + wall, "import_s": imported}


def _storage_url(args: argparse.Namespace, joblib: bool) -> str | None:
    """The Optuna paths' storage: in memory, or an SQLite file in the run's folder (the
    joblib workload always runs in memory)."""
    if args.storage == "memory" or joblib:
        return None
    return f"sqlite:///{Path.cwd() / 'study.db'}"


# -- parent side --------------------------------------------------------------------------


def _analyse(log: Path) -> tuple[int, float | None, float, float]:
    """Most trials at once, the median gap between consecutive trials of one worker, and the
    first trial's start and the last trial's end (epoch seconds)."""
    rows = []
    if log.exists():
        for line in log.read_text(encoding="ascii").splitlines():
            pid, tid, begin, finish = line.split()
            rows.append((f"{pid}:{tid}", float(begin), float(finish)))
    events = sorted([(s, 1) for _, s, _ in rows] + [(e, -1) for _, _, e in rows])
    running = best = 0
    for _, step in events:
        running += step
        best = max(best, running)
    gaps = []
    by_worker: dict[str, list[tuple[float, float]]] = {}
    for worker, start, end in rows:
        by_worker.setdefault(worker, []).append((start, end))
    for spans in by_worker.values():
        spans.sort()
        gaps += [b[0] - a[1] for a, b in itertools.pairwise(spans)]
    first = min((start for _, start, _ in rows), default=math.nan)
    last = max((end for _, _, end in rows), default=math.nan)
    return best, (statistics.median(gaps) * 1000.0 if gaps else None), first, last


def _byte_compile() -> None:
    """Compile the project's modules once, as an install does, so that no measured run
    compiles them (a shell with ``PYTHONDONTWRITEBYTECODE`` set would make every run do so)."""
    import compileall

    root = HERE.parent
    for folder in (root / "hwaware_plugins", root / "adapters", HERE):
        compileall.compile_dir(str(folder), quiet=2)


def _measure(args: argparse.Namespace, workload: str, devices: str, path: str, load: int,
             device_file: Path, sleep: float, trials: int, slots: int) -> Run:
    work = Path(tempfile.mkdtemp(prefix="hwaware-bench-parallel-"))
    log = work / "trials.log"
    framework = ("hyperopt" if path in HYPEROPT_PATHS else
                 "ray.tune" if path == "ray tune" else "optuna")
    env = dict(os.environ, HWAWARE_BENCH_LOG=str(log), HWAWARE_BENCH_SLEEP=str(sleep),
               HWAWARE_BENCH_FRAMEWORK=framework,
               HWAWARE_BENCH_TORCH="1" if args.torch else "0", XDG_RUNTIME_DIR=str(work),
               PYTHONWARNINGS="ignore::DeprecationWarning")
    # As after `pip install`, which byte-compiles: no run pays for compiling our modules.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, str(HERE / "bench_parallel.py"), "--child", "--path", path,
               "--trials", str(trials), "--slots", str(slots), "--device-file", str(device_file),
               "--storage", args.storage]
    run = Run(workload=workload, devices=devices, path=path, load=load, wall_s=math.nan)
    began = time.perf_counter()
    try:
        proc = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True,
                              timeout=args.child_timeout, check=False)
    except subprocess.TimeoutExpired:
        run.error = f"did not finish within --child-timeout {args.child_timeout:g} s"
        return run
    process_s = time.perf_counter() - began
    run.stderr_lines = len([line for line in proc.stderr.splitlines() if line.strip()])
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        run.error = f"exit {proc.returncode}: {tail}"
        return run
    result = json.loads(lines[-1])
    run.wall_s, run.startup_s = result["wall_s"], result["startup_s"]
    run.extra["completed"] = result["completed"]
    run.max_concurrent, run.overhead_ms, first, last = _analyse(log)
    run.extra["first_trial_after_s"] = first - result["started_at"]
    run.extra["import_s"] = result["import_s"]
    run.extra["process_s"] = process_s
    run.extra["after_last_trial_s"] = result["ended_at"] - last
    return run


def _have_ray() -> bool:
    try:
        import ray
        import ray.tune  # noqa: F401
    except ImportError:
        return False
    return True


def _plan(args: argparse.Namespace, files: dict[str, Path]) -> list[tuple[str, str, str, Path,
                                                                          float, int, int]]:
    paths = [p for p in args.paths.split(",") if p != "ray tune" or _have_ray()]
    cells = []
    for sleep in args.durations:
        workload = f"{args.trials} x {sleep:g} s"
        for path in paths:
            names = ("cpu", "gpu") if path in DEVICE_PATHS else ("-",)
            for name in names:
                file = files.get(name, files["cpu"])
                cells.append((workload, name, path, file, sleep, args.trials, args.slots))
    for path in ("joblib study.optimize", "joblib optimize") if args.joblib else ():
        cells.append(("joblib 5 x n_jobs=-1", "cpu 2-core", path, files["joblib"], 0.0, 5, 1))
    return cells


def _summarise(runs: list[Run], args: argparse.Namespace) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.workload, run.devices, run.path, run.load), []).append(run)
    rows = []
    for (workload, devices, path, load), group in groups.items():
        ok = [r for r in group if r.error is None]
        row: dict[str, Any] = {"workload": workload, "devices": devices, "path": path,
                               "load": load, "repeats": len(ok),
                               "errors": [r.error for r in group if r.error]}
        if ok:
            row["wall_s"] = statistics.median(r.wall_s for r in ok)
            row["startup_s"] = statistics.median(r.startup_s for r in ok)
            row["max_concurrent"] = statistics.median(r.max_concurrent for r in ok)
            gaps = [r.overhead_ms for r in ok if r.overhead_ms is not None]
            row["overhead_ms"] = statistics.median(gaps) if gaps else None
            row["stderr_lines"] = max(r.stderr_lines for r in ok)
            row["import_s"] = statistics.median(r.extra["import_s"] for r in ok)
            row["process_s"] = statistics.median(r.extra["process_s"] for r in ok)
            row["first_trial_after_s"] = statistics.median(
                r.extra["first_trial_after_s"] for r in ok)
            row["after_last_trial_s"] = statistics.median(
                r.extra["after_last_trial_s"] for r in ok)
        if not workload.startswith("joblib"):
            sleep = float(workload.split(" x ")[1].split()[0])
            row["ideal_s"] = math.ceil(args.trials / args.slots) * sleep
        rows.append(row)
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        return (row["load"], row["workload"])

    floor: dict[tuple[Any, ...], float] = {}
    ray: dict[tuple[Any, ...], float] = {}
    for row in rows:
        if row["path"] == "optuna n_jobs" and "wall_s" in row:
            floor[key(row)] = row["wall_s"]
        if row["path"] == "ray tune" and "wall_s" in row:
            ray[key(row)] = row["wall_s"]
    print("| load | workload | devices | path | wall s (median) | ideal s | vs optuna n_jobs "
          "| Ray Tune / this | most at once | overhead ms/trial | first trial after s "
          "| after last trial s | stderr lines | adapter import s (before the clock) "
          "| whole script s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in sorted(rows, key=lambda r: (r["load"], r["workload"], r["path"], r["devices"])):
        if "wall_s" not in row:
            print(f"| {row['load']} | {row['workload']} | {row['devices']} | {row['path']} | "
                  f"failed: {row['errors'][:1]} |||||||||")
            continue
        wall = row["wall_s"]
        base = floor.get(key(row))
        peer = ray.get(key(row))
        overhead = row.get("overhead_ms")
        print(f"| {row['load']} | {row['workload']} | {row['devices']} | {row['path']} | "
              f"{wall:.2f}" + (f" ({row['startup_s']:.1f} start-up)" if row["startup_s"] else "")
              + f" | {row.get('ideal_s', float('nan')):.2f} | "
              f"{(wall / base) if base else float('nan'):.2f}x | "
              f"{(peer / wall) if peer else float('nan'):.1f}x | {row['max_concurrent']:g} | "
              f"{'-' if overhead is None else f'{overhead:.1f}'} | "
              f"{row['first_trial_after_s']:.2f} | {row['after_last_trial_s']:.2f} | "
              f"{row['stderr_lines']} | {row['import_s']:.2f} | {row['process_s']:.2f} |")


def main(argv: list[str] | None = None) -> int:
    """Run every cell ``--repeats`` times and print one table of medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--slots", type=int, default=3)
    parser.add_argument("--durations", type=lambda s: [float(x) for x in s.split(",")],
                        default=[0.5, 0.05])
    parser.add_argument("--paths", default=",".join(ALL_PATHS))
    parser.add_argument("--load", default="1", help="busy processes beside the run, e.g. 0,1")
    parser.add_argument("--torch", action="store_true", help="the objective module imports torch")
    parser.add_argument("--child-timeout", type=float, default=300.0)
    parser.add_argument("--storage", choices=("memory", "sqlite"), default="memory",
                        help="the Optuna paths' study storage: in memory (optimize copies it "
                        "to a journal file) or an SQLite file")
    parser.add_argument("--joblib", action=argparse.BooleanOptionalAction, default=True,
                        help="include the joblib workload")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--device-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.path.insert(0, str(HERE))
        print(json.dumps(_child(args)))
        return 0
    folder = Path(tempfile.mkdtemp(prefix="hwaware-bench-devices-"))
    files = {"cpu": folder / "cpu.toml", "gpu": folder / "gpu.toml",
             "joblib": folder / "cpu2.toml"}
    files["cpu"].write_text(CPU_FILE.format(k=args.slots), encoding="utf-8")
    files["gpu"].write_text(GPU_FILE.format(k=args.slots), encoding="utf-8")
    files["joblib"].write_text(JOBLIB_FILE, encoding="utf-8")
    _byte_compile()
    runs: list[Run] = []
    cells = _plan(args, files)
    for load in [int(x) for x in args.load.split(",")]:
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(load)]
        try:
            for repeat in range(args.repeats):
                for workload, name, path, file, sleep, trials, slots in cells:
                    run = _measure(args, workload, name, path, load, file, sleep, trials, slots)
                    runs.append(run)
                    status = run.error or f"{run.wall_s:.2f} s, {run.max_concurrent} at once"
                    print(f"[load {load} repeat {repeat + 1}] {workload} {name} {path}: {status}",
                          file=sys.stderr, flush=True)
        finally:
            for hog in hogs:
                hog.kill()
    rows = _summarise(runs, args)
    print(f"{args.trials} trials on {args.slots} slots, median of {args.repeats}; "
          f"os.cpu_count()={os.cpu_count()}; torch import: {args.torch}; "
          f"optuna storage: {args.storage}")
    _print(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "runs": [asdict(r) for r in runs]},
                                        indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
