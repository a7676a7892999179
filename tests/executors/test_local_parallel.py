"""LocalExecutor: tasks run in parallel up to the pool's slots, and every lease comes back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hwaware_plugins.executors import LocalExecutor

from . import _tasks

Pool = Callable[..., Any]


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_three_slots_run_at_most_three_tasks_and_do_overlap(make_pool: Pool) -> None:
    pool = make_pool()  # three GPUs, one exclusive slot each
    with LocalExecutor(pool, max_workers=6) as ex:
        futures = [ex.submit(_tasks.sleep_and_stamp, 0.5) for _ in range(6)]
        outcomes = [f.result() for f in futures]
    assert [o.state for o in outcomes] == ["complete"] * 6
    assert 2 <= _max_overlap([o.value for o in outcomes]) <= 3
    assert pool.active_leases() == []

