"""``hwaware``: hits per second, learned per device class, by Thompson sampling."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence

import numpy as np

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.scheduling._base import DeviceClassInfo, SubspaceInfo
from hwaware_plugins.scheduling._common import checked_setup, not_set_up, unknown_class
from hwaware_plugins.scheduling._history import History
from hwaware_plugins.scheduling._hwaware_model import (
    TailPosterior,
    best_rate,
    best_tail_rate,
    complexity_weights,
    declared_advantage,
    hit_rate_prior,
    hit_threshold_rank,
    rank_scores,
    runtime_estimates,
    tail_posterior,
)

WORST_RANK_STATES: tuple[str, ...] = ("fail", "pruned", "timeout")
"""Trial states that count as results below every loss in the promise model: a subspace
whose trials keep failing loses its promise instead of staying untried-uncertain. An
out-of-memory trial does not count: it says the device was too small, not the subspace bad."""


class HwawareScheduler:
    """Sends each free slot to the subspace likeliest to yield a top result per second there.

    The promise of a subspace is the chance that its next trial lands among
    the best results so far (the lowest ``min(hit_cap, ceil(hit_fraction x
    n))`` of n results: a threshold that keeps moving toward the best loss).
    With ``promise="model"`` (the default) that chance comes from a normal
    model of the subspace's logit-rank scores with a conjugate posterior
    (prior: the pooled scores, worth ``prior_trials`` results), so it is
    extrapolated from every result, not only the hits (failed, pruned
    and timed-out trials count as results worse than every loss); with
    ``promise="counts"`` from a Beta posterior of its hit count (prior: the
    pooled hit rate, ``prior_trials`` trials). Either way an untried
    subspace is uncertain and gets tried. Its runtime on each device class
    is learned from the history (shrunk toward the declared class speed;
    per-family speedups are never assumed known), counting the time its
    still-running trials have already run, so a pair that is slow shows it
    before its first trial ends. For a free slot of class c the scheduler
    draws one chance per subspace from its posterior (Thompson sampling) and
    picks the largest ``chance / runtime on c``: good subspaces get most
    trials, a class prefers what it runs comparatively fast, and parallel
    free slots spread over what is still plausible.

    No starvation: a fraction ``floor`` of decisions draws a subspace
    uniformly. Warm-up: a subspace with fewer than ``min_trials`` trials
    (recorded, or chosen since ``setup`` so in-flight trials count) is served
    first, drawn in proportion to complexity x declared advantage of the class.
    First wave (``first_wave``): until the first result exists nothing has
    been learned, so the remaining free slots are drawn in proportion to
    complexity x declared advantage too (``"complexity"``, SHADHO's premise
    that larger spaces hold more of the best configurations), half of them
    that way and half uniformly (``"mixed"``), or uniformly (``"uniform"``).

    Cost per decision: O(S) posterior draws; the statistics are refreshed in
    O(S x C^2 + S log n) once the history has grown by ``refresh_growth``
    (2%: every result early on, every 200 at 10,000). Far below 1 ms at
    10,000 trials of history.

    :param seed: seeds every draw.
    :param hit_fraction: share of the results that count as hits early on.
    :param hit_cap: the most results that count as hits.
    :param prior_trials: weight of the pooled hit rate in each subspace's posterior.
    :param prior_strength: pseudo-trials of the runtime prior.
    :param floor: share of decisions drawn uniformly (no subspace starves).
    :param min_trials: trials each subspace gets before the rates decide (0: none).
    :param refresh_growth: relative growth of the history between refreshes.
    :param promise: ``"model"`` (a normal model of each subspace's logit-rank
        scores) or ``"counts"`` (Beta posteriors of the hit counts).
    :param first_wave: ``"complexity"``, ``"mixed"`` or ``"uniform"`` (above).
    """

    name = "hwaware"

    def __init__(
        self,
        seed: int | None = None,
        *,
        hit_fraction: float = 0.1,
        hit_cap: int = 25,
        prior_trials: float = 2.0,
        prior_strength: float = 2.0,
        floor: float = 0.02,
        min_trials: int = 1,
        refresh_growth: float = 0.02,
        promise: str = "model",
        first_wave: str = "complexity",
    ) -> None:
        self.seed = seed
        self.hit_fraction = hit_fraction
        self.hit_cap = hit_cap
        self.prior_trials = prior_trials
        self.prior_strength = prior_strength
        self.floor = floor
        self.min_trials = min_trials
        self.refresh_growth = refresh_growth
        self.promise = promise
        self.first_wave = first_wave
        self._posterior: TailPosterior | None = None
        self._np_rng = np.random.default_rng(seed)
        self._threshold = 0.0
        self._rng = random.Random(seed)
        self._keys: list[str] = []
        self._classes: list[DeviceClassInfo] = []
        self._class_index: dict[str, int] = {}
        self._seen = -1
        self._hits: list[int] = []
        self._trials: list[int] = []
        self._runtimes: list[list[float]] = []  # [class][subspace]
        self._prior = (1.0, 1.0)
        self._warm_weights: list[list[float]] = []
        self._recorded: list[int] = []
        self._chosen: list[int] = []
        self._warming: list[int] = []
        self._launched: list[list[int]] = []  # [class][subspace]: choices made
        self._launch_sum: list[list[float]] = []  # their clock times summed
        self._done: list[list[int]] = []  # results with a finish time
        self._done_start_sum: list[list[float]] = []  # their start times summed
        self._mirrored = 0

    def setup(
        self, subspaces: Sequence[SubspaceInfo], device_classes: Sequence[DeviceClassInfo]
    ) -> None:
        """Take the subspaces and classes; statistics are rebuilt on the next decision."""
        subs, classes = checked_setup(self.name, subspaces, device_classes)
        for name, value in (("floor", self.floor), ("hit_fraction", self.hit_fraction)):
            if not 0 <= value <= 1:
                raise ConfigError(f"hwaware scheduler: {name} must be in [0, 1], got {value}")
        for name, count, lowest in (
            ("hit_cap", self.hit_cap, 1),
            ("min_trials", self.min_trials, 0),
        ):
            if isinstance(count, bool) or not isinstance(count, int) or count < lowest:
                raise ConfigError(
                    f"hwaware scheduler: {name} must be an integer >= {lowest}, got {count!r}"
                )
        if self.first_wave not in ("complexity", "mixed", "uniform"):
            raise ConfigError(
                "hwaware scheduler: first_wave must be 'complexity', 'mixed' or 'uniform', "
                f"got {self.first_wave!r}"
            )
        if self.promise not in ("model", "counts"):
            raise ConfigError(
                f"hwaware scheduler: promise must be 'model' or 'counts', got {self.promise!r}"
            )
        if not self.refresh_growth >= 0:
            raise ConfigError(
                f"hwaware scheduler: refresh_growth must be >= 0, got {self.refresh_growth}"
            )
        if not self.prior_trials > 0 or not self.prior_strength > 0:
            raise ConfigError("hwaware scheduler: prior_trials and prior_strength must be > 0")
        self._keys = [s.key for s in subs]
        self._classes = classes
        self._class_index = {c.name: i for i, c in enumerate(classes)}
        self._seen = -1
        weights = complexity_weights([s.complexity for s in subs])
        advantage = declared_advantage(
            [s.family for s in subs],
            [c.speed for c in classes],
            [c.speedup for c in classes],
            [c.slots for c in classes],
        )
        self._warm_weights = [
            [w * a for w, a in zip(weights, row, strict=True)] for row in advantage
        ]
        self._recorded = [0] * len(subs)
        self._chosen = [0] * len(subs)
        self._launched = [[0] * len(subs) for _ in classes]
        self._launch_sum = [[0.0] * len(subs) for _ in classes]
        self._done = [[0] * len(subs) for _ in classes]
        self._done_start_sum = [[0.0] * len(subs) for _ in classes]
        self._mirrored = 0
        self._warming = list(range(len(subs))) if self.min_trials > 0 else []

    def choose(self, device_class: str, history: History) -> str:
        """A subspace for a free slot of ``device_class`` (O(S) between refreshes)."""
        if not self._keys:
            raise not_set_up(self.name)
        ci = self._class_index.get(device_class)
        if ci is None:
            raise unknown_class(self.name, device_class, [c.name for c in self._classes])
        size = len(history)
        if size != self._seen and (
            self._seen < 0 or size >= self._seen * (1 + self.refresh_growth)
        ):
            self._refresh(history)
        if self._warming:
            chosen = self._warm_pick(ci, self._warming)
        elif self.first_wave != "uniform" and history.n_complete == 0:
            every = range(len(self._keys))
            if self.first_wave == "complexity" or self._rng.random() < 0.5:
                chosen = self._warm_pick(ci, every)
            else:
                chosen = self._rng.randrange(len(self._keys))
        elif self._rng.random() < self.floor:
            chosen = self._rng.randrange(len(self._keys))
        elif self.promise == "model":
            assert self._posterior is not None
            chosen = best_tail_rate(
                self._np_rng, self._posterior, self._runtimes[ci], self._threshold
            )
        else:
            chosen = best_rate(self._rng, self._hits, self._trials, self._runtimes[ci], self._prior)
        self._chosen[chosen] += 1
        now = history.latest_finished_at
        self._launched[ci][chosen] += 1
        self._launch_sum[ci][chosen] += 0.0 if now is None else now
        if chosen in self._warming and self._tried(chosen) >= self.min_trials:
            self._warming.remove(chosen)
        return self._keys[chosen]

    def expected_rates(self, device_class: str) -> dict[str, float]:
        """Posterior-mean hit rate per second of every subspace on a class (for reports, tests)."""
        ci = self._class_index[device_class]
        a, b = self._prior
        return {
            k: (a + h) / (a + b + n) / r
            for k, h, n, r in zip(
                self._keys, self._hits, self._trials, self._runtimes[ci], strict=True
            )
        }

    def _tried(self, s: int) -> int:
        return max(self._recorded[s], self._chosen[s])

    def _warm_pick(self, ci: int, among: Sequence[int]) -> int:
        """One of ``among``, drawn in proportion to complexity x declared advantage on class ci."""
        weights = self._warm_weights[ci]
        cumulative = list(itertools.accumulate(weights[s] for s in among))
        index = bisect.bisect_right(cumulative, self._rng.random() * cumulative[-1])
        return among[min(index, len(cumulative) - 1)]

    def _exposures(self, history: History) -> list[list[float]]:
        """Seconds already run by this scheduler's trials still running, per (subspace, class).

        Running trials of a pair: its choices minus its results (that carry a
        finish time); their summed start times: the choices' clock times minus
        the results' start times (finish - runtime). The clock is the latest
        finish time in the history. Cost: O(new records + S x C).
        """
        index = {k: s for s, k in enumerate(self._keys)}
        for record in history.records_since(self._mirrored):
            s = index.get(record["subspace"])
            ci = self._class_index.get(record["device_class"])
            if s is None or ci is None or record["finished_at"] is None:
                continue
            self._done[ci][s] += 1
            self._done_start_sum[ci][s] += record["finished_at"] - record["runtime_s"]
        self._mirrored = len(history)
        now = history.latest_finished_at
        out = [[0.0] * len(self._classes) for _ in self._keys]
        if now is None:
            return out
        for ci in range(len(self._classes)):
            for s in range(len(self._keys)):
                running = self._launched[ci][s] - self._done[ci][s]
                if running > 0:
                    starts = self._launch_sum[ci][s] - self._done_start_sum[ci][s]
                    out[s][ci] = max(0.0, running * now - starts)
        return out

    def _refresh(self, history: History) -> None:
        keys, classes = self._keys, self._classes
        self._seen = len(history)
        self._recorded = [history.count(k) for k in keys]
        self._warming = [s for s in self._warming if self._tried(s) < self.min_trials]
        counts = [[history.count(k, c.name) for c in classes] for k in keys]
        sums = [[history.runtime_sum(k, c.name) for c in classes] for k in keys]
        table = runtime_estimates(
            counts,
            sums,
            [c.speed for c in classes],
            strength=self.prior_strength,
            exposures=self._exposures(history),
        )
        self._runtimes = [[row[ci] for row in table] for ci in range(len(classes))]
        n = history.n_complete
        rank = hit_threshold_rank(n, fraction=self.hit_fraction, cap=self.hit_cap)
        threshold = history.kth_best_loss(rank)
        self._hits = [
            0 if threshold is None else history.count_losses_at_most(k, threshold) for k in keys
        ]
        self._trials = list(self._recorded)
        self._prior = hit_rate_prior(sum(self._hits), sum(self._trials), strength=self.prior_trials)
        if self.promise == "model":
            failed = [
                sum(history.failures(k, c.name).get(state, 0)
                    for c in classes for state in WORST_RANK_STATES)
                for k in keys
            ]
            stats = rank_scores(
                [history.sorted_losses(k) + [math.inf] * f for k, f in zip(keys, failed,
                                                                             strict=True)]
            )
            self._posterior = tail_posterior(stats, prior_trials=self.prior_trials)
            total = n + sum(failed)
            u = (min(rank, n) + 0.5) / (total + 1)  # between the k-th and k+1-th best
            self._threshold = math.log(u / (1.0 - u))
