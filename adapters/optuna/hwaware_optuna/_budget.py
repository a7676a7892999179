"""How many trials a coordinator (``optimize``, ``hwaware worker``) may still start.

Counted locally, or in the shared storage.
"""

from __future__ import annotations

from typing import Any, Protocol

from hwaware_optuna._trials import started_non_retries


class Budget(Protocol):
    """Decides whether a coordinator may start another non-retry trial.

    Queued retries (optuna's ``retry_history``) always run on top of the budget.
    """

    def may_start_new(self) -> bool:
        """True if one more non-retry trial (new, or queued by the user) may start."""
        ...

    def started(self, retry: bool) -> None:
        """The coordinator handed a trial to the executor (``retry``: a queued retry)."""
        ...


class LocalBudget:
    """Exactly ``n_trials`` non-retry trials (``None``: no limit); retries come on top.

    Exact because one coordinator starts every trial. Not thread-safe (the
    coordinator loop is its only user). Cost: O(1).
    """

    def __init__(self, n_trials: int | None) -> None:
        self.n_trials = n_trials
        self._starts = 0

    def may_start_new(self) -> bool:
        return self.n_trials is None or self._starts < self.n_trials

    def started(self, retry: bool) -> None:
        if not retry:
            self._starts += 1


class StorageBudget:
    """At most ``total`` non-retry trials in the whole study, counted in its storage.

    Queued retries are started on top. Coordinators on several nodes share the
    count through the storage; two nodes deciding at the same instant may each
    start the last trial, so the study can end up to (nodes - 1) trials over
    (as with optuna's ``MaxTrialsCallback``); on one node it is exact.
    Cost: one read of the study's trials per decision.
    """

    def __init__(self, storage: Any, study_id: int, total: int | None) -> None:
        self.storage = storage
        self.study_id = study_id
        self.total = total

    def may_start_new(self) -> bool:
        if self.total is None:
            return True
        return started_non_retries(self.storage, self.study_id) < self.total

    def started(self, retry: bool) -> None:
        return None
