"""``CostAwarePruner``: stop trials whose steps cost far more device time than their peers'."""

from __future__ import annotations

import datetime
import logging
import math
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from hwaware_optuna._attrs import STEP_S, runtime_of
from hwaware_optuna._peers import peer_filter
from hwaware_plugins.errors import ConfigError

if TYPE_CHECKING:
    from optuna.study import Study

_log = logging.getLogger(__name__)

MIN_MEASURED_STEPS = 2
"""Steps a trial's per-step cost must span before it is compared with its peers'.

One interval between two reports is at the mercy of a scheduling hiccup; two
average it out.
"""

_now = time.monotonic  # the clock steps are timed with (tests replace it)
_KEEP_CLOCKS = 64  # per-trial clocks kept before those of finished trials are dropped


def per_step_seconds(
    first_step: int, first_s: float, step: int, now_s: float
) -> float | None:
    """Seconds per step between two observed reports, or ``None`` before a second step.

    Only the time between reports counts: start-up (data loading, model
    building, CUDA init) and waiting for a device come before the first report.
    Pure.
    """
    if step <= first_step:
        return None
    return max(0.0, now_s - first_s) / (step - first_step)


def projected_seconds(
    spent_s: float, step_s: float | None, step: int, final_step: float | None
) -> float:
    """Projected total seconds: time spent so far plus ``step_s`` per remaining step.

    Only the per-step cost is extrapolated, never the start-up. Unknown
    per-step cost or final step, or the final step already reached: the time
    spent. Pure.
    """
    if step_s is None or final_step is None or step >= final_step:
        return spent_s
    return spent_s + step_s * (final_step - step)


def should_stop(
    projected_s: float,
    step_s: float | None,
    peer_step_s: Sequence[float],
    *,
    budget_device_seconds: float | None,
    k_median: float | None,
    min_trials: int,
) -> bool:
    """True when the projection passes the budget, or ``step_s`` passes ``k_median`` x the peers'.

    The median rule compares per-step costs and needs ``step_s`` and at least
    ``min_trials`` peer values. Identical trials never pass it (``k_median`` > 1).
    Pure.
    """
    if budget_device_seconds is not None and projected_s > budget_device_seconds:
        return True
    if k_median is None or step_s is None or len(peer_step_s) < min_trials:
        return False
    return step_s > k_median * statistics.median(peer_step_s)


@dataclass
class _StepClock:
    """When this process first saw a trial report, and its per-step cost so far."""

    first_step: int
    first_s: float
    last_step: int
    step_s: float | None = None


class CostAwarePruner(BasePruner):
    """Prune a trial whose steps cost far more device time than its peers' steps.

    The per-step cost is measured from the steps: the time between the first
    report this pruner saw and the latest one, over the steps in between.
    Start-up cost and the wait for a device lease come before the first report
    and never count, so identical trials are never pruned. The trial is
    pruned when its per-step cost (measured over at least
    :data:`MIN_MEASURED_STEPS` steps) exceeds ``k_median`` times the median
    per-step cost of the completed trials of its subspace on its device class
    (once there are ``min_trials`` of them), or when its projected total
    (seconds since it started plus its per-step cost times the steps left to
    the typical final step of its peers) exceeds ``budget_device_seconds``.
    A trial holds one device slot, so its device-seconds are its seconds.
    Losses play no part: combine it with a loss-based pruner through your own
    logic if you need both.

    Each measurement is stored on the trial as the user attribute
    ``hwaware:step_s``, so processes sharing a study compare with each other's
    trials. A completed peer without it (run under another pruner) counts with
    ``hwaware:runtime_s`` over its number of steps, which includes its
    start-up and so only errs towards keeping trials.

    Cost per call: O(trials of the study) (one pass to find the peers) and one
    user-attribute write. Thread-safe (a lock around the per-trial clocks);
    picklable (the clocks are dropped: running trials restart their
    measurement).

    :param budget_device_seconds: maximum projected seconds per trial, or ``None``.
    :param k_median: tolerated multiple of the peers' median per-step cost, or ``None``.
    :param min_trials: peers needed before the median rule applies.
    """

    def __init__(
        self,
        *,
        budget_device_seconds: float | None = None,
        k_median: float | None = 3.0,
        min_trials: int = 5,
    ) -> None:
        self.budget_device_seconds = budget_device_seconds
        self.k_median = k_median
        self.min_trials = min_trials
        self._lock = threading.Lock()
        self._clocks: dict[tuple[int, int], _StepClock] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"], state["_clocks"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._clocks = {}

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        """True when the running ``trial`` should stop (see the class doc).

        :raises ConfigError: a non-positive budget or ``k_median``, or ``min_trials`` < 1.
        """
        self._check()
        step = trial.last_step
        if step is None:
            return False
        step_s = self._measure(study, trial, step)
        keep = peer_filter(study, trial, per_device_class=True)
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        self._forget_finished(study, trials)
        peers = [t for t in complete if keep(t)]
        spent = 0.0
        if trial.datetime_start is not None:
            spent = (datetime.datetime.now() - trial.datetime_start).total_seconds()
        projected = projected_seconds(spent, step_s, step, _typical_final_step(peers, complete))
        peer_costs = [c for c in map(_peer_step_seconds, peers) if c is not None]
        return should_stop(
            projected,
            step_s,
            peer_costs,
            budget_device_seconds=self.budget_device_seconds,
            k_median=self.k_median,
            min_trials=self.min_trials,
        )

    def _measure(self, study: Study, trial: FrozenTrial, step: int) -> float | None:
        """Time this report; return the per-step cost once it spans enough steps."""
        now = _now()
        key = (id(study._storage), trial._trial_id)
        with self._lock:
            clock = self._clocks.get(key)
            if clock is None:
                self._clocks[key] = _StepClock(step, now, step)
                return None
            fresh = step > clock.last_step  # else asked again at a step already timed
            if fresh:
                clock.step_s = per_step_seconds(clock.first_step, clock.first_s, step, now)
                clock.last_step = step
            cost, measured = clock.step_s, clock.last_step - clock.first_step
        if cost is None:
            return None
        if fresh:
            self._store(study, trial, cost)
        return cost if measured >= MIN_MEASURED_STEPS else None

    def _forget_finished(self, study: Study, trials: Sequence[FrozenTrial]) -> None:
        """Drop the clocks of finished trials once there are more than :data:`_KEEP_CLOCKS`."""
        if len(self._clocks) <= _KEEP_CLOCKS:
            return
        storage = id(study._storage)
        with self._lock:
            for t in trials:
                if t.state.is_finished():
                    self._clocks.pop((storage, t._trial_id), None)

    @staticmethod
    def _store(study: Study, trial: FrozenTrial, cost: float) -> None:
        try:
            study._storage.set_trial_user_attr(trial._trial_id, STEP_S, cost)
        except Exception:  # a measurement lost must not stop the trial
            _log.debug("trial %d: could not store its per-step cost", trial.number, exc_info=True)

    def _check(self) -> None:
        for name in ("budget_device_seconds", "k_median"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, int | float) and math.isfinite(value) and value > 0
            ):
                raise ConfigError(f"CostAwarePruner: {name} must be None or > 0, got {value!r}")
        if isinstance(self.min_trials, bool) or not isinstance(self.min_trials, int) or (
            self.min_trials < 1
        ):
            raise ConfigError(
                f"CostAwarePruner: min_trials must be an integer >= 1, got {self.min_trials!r}"
            )


def _peer_step_seconds(trial: FrozenTrial) -> float | None:
    """A completed peer's per-step cost: measured, else its runtime over its steps."""
    measured = trial.user_attrs.get(STEP_S)
    if isinstance(measured, int | float) and math.isfinite(measured) and measured >= 0:
        return float(measured)
    runtime = runtime_of(trial)
    steps = len(trial.intermediate_values)
    return runtime / steps if runtime is not None and steps else None


def _typical_final_step(
    peers: Sequence[FrozenTrial], complete: Sequence[FrozenTrial]
) -> float | None:
    for group in (peers, complete):
        steps = [t.last_step for t in group if t.last_step is not None]
        if steps:
            return float(statistics.median(steps))
    return None
