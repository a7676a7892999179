"""Which trial a supervised worker gets, and which devices new workers should lease.

Trials are dealt as optuna pops its queue: a queued (WAITING) trial first,
else a new one while the budget allows; but a queued trial with a memory need
(an out-of-memory retry, :mod:`hwaware_optuna._worker_oom`) only goes to a
worker whose device can hold it. Every dealt trial is RUNNING and stamped with
its worker before the worker hears of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import optuna
from optuna.trial import FrozenTrial

from hwaware_optuna._worker_budget import Budget
from hwaware_optuna._worker_oom import fits, memory_need
from hwaware_optuna._worker_trials import (
    claim_waiting,
    create_running,
    is_retry,
    waiting_trials,
    worker_stamp,
)
from hwaware_plugins.hardware import Device
from hwaware_plugins.hardware._pool import DevicePool


def _any_device(device: Device) -> bool:
    return True


class TrialDealer:
    """Deals the trials of one supervisor's workers. Not thread-safe (the supervisor's loop).

    :param study: the study whose trials are dealt.
    :param pool: the node's pool (its devices and memory fraction decide what fits).
    :param budget: whether another non-retry trial may start.
    :param node: stamped on every dealt trial.
    :param max_retries: whether running trials may still be queued again.
    :param deadline: ``time.monotonic()`` after which nothing is dealt.
    """

    def __init__(self, study: optuna.Study, *, pool: DevicePool, budget: Budget, node: str,
                 max_retries: int, deadline: float = float("inf")) -> None:
        self.study = study
        self.pool = pool
        self.budget = budget
        self.node = node
        self.max_retries = max_retries
        self.deadline = deadline

    def open(self) -> bool:
        """True until the deadline."""
        return time.monotonic() < self.deadline

    def fits(self, device: Device, need: float | None) -> bool:
        """True when ``device`` can hold a trial needing ``need`` MiB (see ``_worker_oom.fits``)."""
        return fits(device, need, self.pool.memory_fraction)

    def fitting_retries(self) -> list[FrozenTrial]:
        """Queued retries some device of the pool can hold. Cost: one storage read."""
        return [
            t for t in waiting_trials(self.study._storage, self.study._study_id)
            if is_retry(t) and any(self.fits(d, memory_need(t)) for d in self.pool.devices)
        ]

    def work_left(self, running: bool) -> bool:
        """True while a trial may still be dealt: new ones, queued retries, or retries to
        come from trials ``running`` now. Cost: up to one storage read."""
        if not self.open():
            return False
        return (self.budget.may_start_new() or (running and self.max_retries > 0)
                or bool(self.fitting_retries()))

    def lease_filter(self, in_use: Sequence[Device]) -> Callable[[Device], bool] | None:
        """The devices a new worker may lease, or ``None`` when none should start.

        Any device while new trials may start; with only queued retries left,
        the devices that can hold one that no device ``in_use`` can.
        Cost: up to one storage read.
        """
        if not self.open():
            return None
        if self.budget.may_start_new():
            return _any_device
        needs = [
            need for need in (memory_need(t) for t in self.fitting_retries())
            if not any(self.fits(device, need) for device in in_use)
        ]
        if not needs:
            return None
        return lambda device: any(self.fits(device, need) for need in needs)

    def deal(self, pid: int, device: Device) -> FrozenTrial | None:
        """A RUNNING trial stamped with worker ``pid`` for a worker on ``device``, or ``None``.

        Cost: a few storage calls (a read of the queue, a claim or a creation).
        """
        if not self.open():
            return None
        storage, study_id = self.study._storage, self.study._study_id
        new_ok = self.budget.may_start_new()
        stamp = worker_stamp(pid, self.node)
        trial = claim_waiting(
            storage, study_id, stamp=stamp,
            accept=lambda t: (new_ok or is_retry(t)) and self.fits(device, memory_need(t)),
        )
        if trial is None and new_ok:
            trial = create_running(storage, study_id, stamp)
        if trial is not None:
            self.budget.started(is_retry(trial))
        return trial
