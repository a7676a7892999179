"""Hyperopt throughput: HardwareAwareTrials on 3 slots versus plain Trials.

12 evaluations of a 0.5 s sleep. Plain ``Trials`` runs them one after the
other (about 6 s); ``HardwareAwareTrials`` runs 3 at a time, each in its own
pinned process. Prints the median wall time of ``--repeats`` runs of each.

    python benchmarks/bench_hyperopt_parallel.py --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from hwaware_hyperopt import HardwareAwareTrials
from hyperopt import Trials, fmin, hp, rand

from hwaware_plugins.executors import LocalExecutor
from hwaware_plugins.hardware import Device
from hwaware_plugins.hardware._pool import DevicePool

SPACE = {"x": hp.uniform("x", -1, 1)}


def objective(point: dict[str, Any]) -> float:
    """Sleep 0.5 s, return ``x ** 2``."""
    time.sleep(0.5)
    return float(point["x"]) ** 2


def _timed(make_trials: Callable[[], Any], evals: int) -> float:
    trials = make_trials()
    started = time.perf_counter()
    fmin(objective, SPACE, algo=rand.suggest, max_evals=evals, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False)
    elapsed = time.perf_counter() - started
    if hasattr(trials, "close"):
        trials.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    """Print both medians and the speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--evals", type=int, default=12)
    parser.add_argument("--slots", type=int, default=3)
    args = parser.parse_args(argv)
    state = tempfile.mkdtemp(prefix="hwaware-bench-")
    devices = [Device(id=f"cpu:{i}", kind="cpu", name="cpu", cores=1) for i in range(args.slots)]

    def parallel() -> HardwareAwareTrials:
        pool = DevicePool(devices, name="bench", state_dir=state, skip_foreign_processes=False)
        return HardwareAwareTrials(executor=LocalExecutor(pool))

    hw = [_timed(parallel, args.evals) for _ in range(args.repeats)]
    plain = [_timed(Trials, args.evals) for _ in range(args.repeats)]
    a, b = statistics.median(hw), statistics.median(plain)
    print(f"{args.evals} evaluations of 0.5 s, median of {args.repeats}:")
    print(f"  HardwareAwareTrials ({args.slots} slots): {a:.2f} s")
    print(f"  Trials (sequential):                {b:.2f} s")
    print(f"  speed-up: {b / a:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
