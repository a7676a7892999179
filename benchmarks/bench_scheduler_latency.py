"""Decision latency of each scheduler with 10,000 trials of history.

(``oracle`` is left out: it needs the simulator's table, and is not a scheduler a
study can run.)

Prints the median and 99th percentile of ``choose`` over 2,000 decisions on a
history of 10,000 trials (8 subspaces, 4 device classes), growing the history by
one record per decision as a live study does. Run from the repository root:

    nice -n 10 .venv/bin/python benchmarks/bench_scheduler_latency.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from hwaware_plugins import load
from hwaware_plugins.scheduling import DeviceClassInfo, History, SubspaceInfo

SUBSPACES = [SubspaceInfo(f"s{i}", complexity=float(i + 1), family=f"f{i}") for i in range(8)]
CLASSES = [
    DeviceClassInfo("gpu-fast", speed=4.0, slots=16),
    DeviceClassInfo("gpu-slow", speed=2.0, slots=32),
    DeviceClassInfo("cpu-new", speed=1.0, slots=51),
    DeviceClassInfo("cpu-old", speed=0.6, slots=51),
]


def history_of(n: int, rng: np.random.Generator) -> History:
    """A history of ``n`` random trials."""
    h = History()
    for _ in range(n):
        s = SUBSPACES[int(rng.integers(8))].key
        c = CLASSES[int(rng.integers(4))].name
        h.record(
            s,
            c,
            runtime_s=float(rng.lognormal()),
            loss=float(rng.random()),
            params={"x": float(rng.random()), "y": float(rng.random())},
        )
    return h


def main() -> None:
    """Time each scheduler a study can run (tpe when the optuna adapter is installed)."""
    from hwaware_plugins import components

    known = {c.name for c in components("scheduler")}
    for name in ("random", "shadho", "hwaware", "tpe"):
        if name not in known:
            print(f"{name:8s} not installed")
            continue
        rng = np.random.default_rng(0)
        history = history_of(10_000, rng)
        scheduler = load("scheduler", name, seed=0)
        scheduler.setup(SUBSPACES, CLASSES)
        scheduler.choose("cpu-new", history)  # first plan
        times = []
        for i in range(2_000):
            cls = CLASSES[i % 4].name
            t0 = time.perf_counter()
            key = scheduler.choose(cls, history)
            times.append(time.perf_counter() - t0)
            history.record(
                key,
                cls,
                runtime_s=1.0,
                loss=float(rng.random()),
                params={"x": float(rng.random()), "y": float(rng.random())},
            )
        times.sort()
        print(
            f"{name:8s} median {statistics.median(times) * 1e3:.4f} ms   "
            f"p99 {times[int(0.99 * len(times))] * 1e3:.3f} ms   "
            f"mean {statistics.fmean(times) * 1e3:.3f} ms"
        )


if __name__ == "__main__":
    main()
