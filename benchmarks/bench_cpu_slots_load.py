"""CPU slots under load: 3 declared CPU slots, Optuna ``n_jobs=3``, 0.5 s trials, busy neighbours.

Runs ``--busy`` CPU-bound loops (``while True: pass``) beside ``--studies``
concurrent processes, each optimizing ``--trials`` 0.5 s sleeps with
``HardwareAwareSampler(devices=<kind = "cpu", count = 3>)`` and ``n_jobs=3``,
all with the default pool name (as users run them). Prints, per run and
study, the wall time, the most trials running at once, and the most running
at once in the first 1.5 s; then the median wall time. Ideal: 8 rounds of
0.5 s = 4.0 s for 24 trials, 3 at once from the start.

    python benchmarks/bench_cpu_slots_load.py --repeats 3 --studies 2 --busy 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CPU_SLOTS = '[[device]]\nkind = "cpu"\ncount = 3\n'


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The largest number of intervals that overlap at one instant. Pure."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = best = 0
    for _, step in events:
        running += step
        best = max(best, running)
    return best


def study(devices: str, trials: int) -> dict[str, float]:
    """Run one study in this process; the figures as a dict."""
    import optuna
    from hwaware_optuna import HardwareAwareSampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spans: list[tuple[float, float]] = []

    def objective(trial: optuna.trial.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        start = time.monotonic()
        time.sleep(0.5)
        spans.append((start, time.monotonic()))
        return x * x

    started = time.monotonic()
    optuna.create_study(sampler=HardwareAwareSampler(devices=devices, seed=0)).optimize(
        objective, n_trials=trials, n_jobs=3
    )
    wall = time.monotonic() - started
    first = min(s for s, _ in spans)
    early = [span for span in spans if span[0] - first < 1.5]
    return {"wall_s": wall, "at_once": most_at_once(spans), "at_once_first_1_5s":
            most_at_once(early), "load": os.getloadavg()[0]}


def one_run(devices: str, trials: int, studies: int, busy: int) -> list[dict[str, float]]:
    """Start the busy loops and the studies; collect each study's figures."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        time.sleep(1.0 if busy else 0.0)
        runs = [
            subprocess.Popen([sys.executable, __file__, "--child", devices, str(trials)],
                             stdout=subprocess.PIPE, text=True)
            for _ in range(studies)
        ]
        return [json.loads(run.communicate()[0].strip().splitlines()[-1]) for run in runs]
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def main(argv: list[str] | None = None) -> int:
    """Print every study's figures and the median wall time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--studies", type=int, default=2, help="concurrent studies")
    parser.add_argument("--busy", type=int, default=2, help="CPU-bound neighbour processes")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(study(args.child[0], int(args.child[1]))))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        devices = str(Path(folder) / "cpu3.toml")
        Path(devices).write_text(CPU_SLOTS)
        walls: list[float] = []
        for repeat in range(args.repeats):
            for number, figures in enumerate(one_run(devices, args.trials, args.studies,
                                                     args.busy)):
                walls.append(figures["wall_s"])
                print(f"run {repeat} study {number}: {args.trials} trials in "
                      f"{figures['wall_s']:.2f} s, {figures['at_once']:.0f} at once "
                      f"({figures['at_once_first_1_5s']:.0f} in the first 1.5 s), load "
                      f"{figures['load']:.1f}")
    print(f"median {statistics.median(walls):.2f} s over {len(walls)} studies "
          f"(ideal {0.5 * -(-args.trials // 3):.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
