"""``CostAwarePruner``: stop trials projected to cost far more device time than their peers."""

from __future__ import annotations

import datetime
import math
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from hwaware_optuna._attrs import runtime_of
from hwaware_optuna._peers import peer_filter
from hwaware_plugins.errors import ConfigError

if TYPE_CHECKING:
    from optuna.study import Study


def projected_seconds(elapsed_s: float, step: int, final_step: float | None) -> float:
    """Projected total seconds of a trial at ``step`` after ``elapsed_s``, by linear extrapolation.

    Steps are taken as 0-based or 1-based alike (``step + 1`` of
    ``final_step + 1`` done). Unknown final step, or one already reached: the
    elapsed time itself. Pure.
    """
    if final_step is None or step >= final_step:
        return elapsed_s
    return elapsed_s * (final_step + 1) / (max(step, 0) + 1)


def should_stop(
    projected_s: float,
    peer_runtimes: Sequence[float],
    *,
    budget_device_seconds: float | None,
    k_median: float | None,
    min_trials: int,
) -> bool:
    """True when the projection passes the budget, or ``k_median`` x the peers' median.

    The median rule needs at least ``min_trials`` peer runtimes. Pure.
    """
    if budget_device_seconds is not None and projected_s > budget_device_seconds:
        return True
    if k_median is None or len(peer_runtimes) < min_trials:
        return False
    return projected_s > k_median * statistics.median(peer_runtimes)


class CostAwarePruner(BasePruner):
    """Prune a trial whose projected device-seconds exceed a budget or its peers' typical cost.

    At each report the trial's total device time is projected from the time
    elapsed since it started and its last reported step, against the typical
    final step (median last step of its subspace's completed trials, else of
    all completed trials). It is pruned when the projection exceeds
    ``budget_device_seconds``, or ``k_median`` times the median runtime of the
    completed trials of its subspace on its device class (once there are
    ``min_trials`` of them). A trial holds one device slot, so its
    device-seconds are its seconds. Losses play no part: combine it with a
    loss-based pruner through your own logic if you need both.

    Cost per call: O(trials of the study) (one pass to find the peers).
    Thread-safe: keeps no state.

    :param budget_device_seconds: maximum projected device-seconds per trial, or ``None``.
    :param k_median: tolerated multiple of the peers' median runtime, or ``None``.
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

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        """True when the running ``trial`` should stop (see the class doc).

        :raises ConfigError: a non-positive budget or ``k_median``, or ``min_trials`` < 1.
        """
        self._check()
        step = trial.last_step
        if step is None or trial.datetime_start is None:
            return False
        elapsed = (datetime.datetime.now() - trial.datetime_start).total_seconds()
        keep = peer_filter(study, trial, per_device_class=True)
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        peers = [t for t in complete if keep(t)]
        projected = projected_seconds(elapsed, step, _typical_final_step(peers, complete))
        runtimes = [r for r in map(runtime_of, peers) if r is not None]
        return should_stop(
            projected,
            runtimes,
            budget_device_seconds=self.budget_device_seconds,
            k_median=self.k_median,
            min_trials=self.min_trials,
        )

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


def _typical_final_step(
    peers: Sequence[FrozenTrial], complete: Sequence[FrozenTrial]
) -> float | None:
    for group in (peers, complete):
        steps = [t.last_step for t in group if t.last_step is not None]
        if steps:
            return float(statistics.median(steps))
    return None
