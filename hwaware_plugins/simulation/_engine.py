"""The discrete-event simulator: replays measured trials on a virtual clock.

A free slot asks the scheduler for a subspace; the trial is one of that
subspace's recorded rows, drawn at random by a per-subspace stream seeded by
``(seed, subspace index)`` (the within-subspace sampler, identical for every
scheduler: the k-th trial of a subspace is the same row whichever scheduler
asked for it); it runs ``runtime_s / device.speed_for(family)`` virtual
seconds and is recorded in the history when it ends. Trials that would end
after the budget are not counted. Nothing sleeps.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwaware_plugins.errors import ConfigError, HwawareError
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.scheduling._base import Scheduler, SubspaceInfo
from hwaware_plugins.scheduling._history import History
from hwaware_plugins.simulation._cluster import class_infos
from hwaware_plugins.simulation._table import TrialTable

_CHUNK = 256


@dataclass(frozen=True)
class RunResult:
    """The completed trials of one simulated run, in order of completion."""

    scheduler: str
    seed: int
    budget_s: float
    n_slots: int
    start: np.ndarray
    end: np.ndarray
    loss: np.ndarray
    subspace: tuple[str, ...]
    device_class: tuple[str, ...]

    def __len__(self) -> int:
        """Number of completed trials."""
        return len(self.end)


class _RowSampler:
    """Per-subspace seeded streams of row indices, drawn in chunks."""

    def __init__(self, sizes: Sequence[int], seed: int) -> None:
        self._sizes = list(sizes)
        self._rngs = [np.random.default_rng([seed, i]) for i in range(len(sizes))]
        self._buffers: list[list[int]] = [[] for _ in sizes]

    def next(self, index: int) -> int:
        buffer = self._buffers[index]
        if not buffer:
            draws = self._rngs[index].integers(0, self._sizes[index], size=_CHUNK)
            buffer.extend(reversed(draws.tolist()))
        return buffer.pop()


MAX_TRIALS = 200_000
"""Trials one simulated run may finish before its budget; past it the run stops with an
error (a subspace far cheaper than the budget, or a runtime too small to move the clock)."""


def simulate(
    table: TrialTable,
    slots: Sequence[Device],
    scheduler: Scheduler,
    *,
    budget_s: float,
    seed: int,
    infos: Sequence[SubspaceInfo] | None = None,
) -> RunResult:
    """Run ``scheduler`` on the slots until ``budget_s`` virtual seconds.

    :param slots: one device per worker slot (:func:`build_slots`).
    :param infos: the subspace infos handed to ``setup`` (default: from the
        table with the ``shadho`` complexity rule).

    Only a scheduler that declares ``sees_speedups = True`` (the ``oracle``)
    is told the per-family speedups and, through its ``reveal`` method, the
    table's losses and runtimes, row by row; every other one learns from the history.
    Cost: O(trials x (scheduler decision + log slots)).

    :raises ConfigError: the run finished :data:`MAX_TRIALS` trials before the budget.
    """
    subs = table.subspaces
    infos = list(infos) if infos is not None else table.subspace_infos()
    truth = bool(getattr(scheduler, "sees_speedups", False))
    scheduler.setup(infos, class_infos(slots, with_speedups=truth))
    reveal = getattr(scheduler, "reveal", None)
    if truth and callable(reveal):  # the oracle: the limit, told the table
        reveal(
            {s.key: s.losses.tolist() for s in subs},
            {s.key: s.runtimes.tolist() for s in subs},
        )
    index_of = {s.key: i for i, s in enumerate(subs)}
    speeds = [[d.speed_for(s.family) for s in subs] for d in slots]
    classes = [d.device_class for d in slots]
    sampler = _RowSampler([len(s) for s in subs], seed)
    history = History()
    heap: list[tuple[float, int, int, int, int, float]] = []
    counter = 0
    starts: list[float] = []
    ends: list[float] = []
    losses: list[float] = []
    done_subspaces: list[str] = []
    done_classes: list[str] = []

    def launch(slot: int, now: float) -> None:
        nonlocal counter
        key = scheduler.choose(classes[slot], history)
        si = index_of.get(key)
        if si is None:
            raise HwawareError(f"scheduler {scheduler.name!r} returned unknown subspace {key!r}")
        row = sampler.next(si)
        end = now + float(subs[si].runtimes[row]) / speeds[slot][si]
        heapq.heappush(heap, (end, counter, slot, si, row, now))
        counter += 1

    for slot in np.random.default_rng([seed, len(subs)]).permutation(len(slots)).tolist():
        launch(slot, 0.0)
    while heap:
        end, _, slot, si, row, began = heapq.heappop(heap)
        if end > budget_s:
            break
        loss = float(subs[si].losses[row])
        history.record(
            subs[si].key,
            classes[slot],
            runtime_s=end - began,
            loss=loss,
            finished_at=end,
            params=subs[si].params[row],
        )
        starts.append(began)
        ends.append(end)
        losses.append(loss)
        done_subspaces.append(subs[si].key)
        done_classes.append(classes[slot])
        if len(ends) >= MAX_TRIALS:
            cheapest = min(subs, key=lambda s: float(s.runtimes.min()))
            raise ConfigError(
                f"scheduler {scheduler.name!r} finished {MAX_TRIALS:,} trials after "
                f"{end:.3g} of {budget_s:.3g} virtual seconds: subspace {cheapest.key!r} takes "
                f"{float(cheapest.runtimes.min()):.3g} s; lower --budget-hours or check the "
                "table's runtime_s"
            )
        launch(slot, end)
    return RunResult(
        scheduler=scheduler.name,
        seed=seed,
        budget_s=budget_s,
        n_slots=len(slots),
        start=np.array(starts),
        end=np.array(ends),
        loss=np.array(losses),
        subspace=tuple(done_subspaces),
        device_class=tuple(done_classes),
    )
