"""How many trials a supervisor may still start: counted locally, or in the shared storage."""

from __future__ import annotations

from typing import Any, Protocol

from hwaware_optuna._worker_trials import budget_counts


class Budget(Protocol):
    """Decides whether a worker asking for a trial gets one."""

    def may_grant(self, in_flight: int) -> bool:
        """True if one more trial may start; ``in_flight`` tickets are granted, not yet started."""
        ...

    def started(self, retry: bool) -> None:
        """A granted ticket became a trial (``retry``: it took a queued retry)."""
        ...

    def retry_queued(self) -> None:
        """The supervisor queued a retry, which runs on top of the budget."""
        ...


class LocalBudget:
    """Exactly ``n_trials`` new trials (``None``: no limit), plus one per queued retry.

    Exact because one supervisor grants every ticket. Not thread-safe (the
    supervisor's loop is its only user). Cost: O(1).
    """

    def __init__(self, n_trials: int | None) -> None:
        self.n_trials = n_trials
        self._starts = 0
        self._retries = 0

    def may_grant(self, in_flight: int) -> bool:
        if self.n_trials is None:
            return True
        return self._starts + in_flight < self.n_trials + self._retries

    def started(self, retry: bool) -> None:
        self._starts += 1

    def retry_queued(self) -> None:
        self._retries += 1


class StorageBudget:
    """At most ``total`` non-retry trials in the whole study, counted in its storage.

    Queued retries are granted on top. Supervisors on several nodes share the
    count through the storage; two nodes deciding at the same instant may each
    start the last trial, so the study can end up to (nodes - 1) trials over
    (as with optuna's ``MaxTrialsCallback``); on one node it is exact.
    Cost: one read of the study's trials per decision.
    """

    def __init__(self, storage: Any, study_id: int, total: int | None) -> None:
        self.storage = storage
        self.study_id = study_id
        self.total = total

    def may_grant(self, in_flight: int) -> bool:
        if self.total is None:
            return True
        used, waiting_retries = budget_counts(self.storage, self.study_id)
        return used + in_flight < self.total or waiting_retries > in_flight

    def started(self, retry: bool) -> None:
        return None

    def retry_queued(self) -> None:
        return None
