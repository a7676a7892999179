"""``optimize``: run a study's trials in one pinned worker process per device slot."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.storages import InMemoryStorage

from hwaware_optuna._optimize_setup import (
    KILL_GRACE_S,
    check_count,
    check_picklable,
    check_seconds,
    journal_copy,
    node_name,
    sigterm_as_exit,
    spec_factory,
)
from hwaware_optuna._sampler import HardwareAwareSampler
from hwaware_optuna._worker_budget import LocalBudget
from hwaware_optuna._worker_protocol import OomPolicy
from hwaware_optuna._worker_supervisor import Summary, Supervisor
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.executors._timeouts import TrialTimeout, check_trial_timeout
from hwaware_plugins.hardware import Device, resolve_devices
from hwaware_plugins.hardware._pool import DevicePool

_log = logging.getLogger("hwaware_optuna")

EXECUTORS: tuple[str, ...] = ("local",)
"""Executors :func:`optimize` knows: ``"local"`` (worker processes on this node)."""


def optimize(
    study: optuna.Study,
    objective: Callable[[optuna.trial.Trial], Any],
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    devices: str | os.PathLike[str] | Sequence[Device] | None = None,
    executor: str = "local",
    max_retries: int = 0,
    trial_timeout: TrialTimeout = None,
) -> optuna.Study:
    """Optimize ``study`` with one worker process per device slot of this node.

    Each worker is started with its slot's pinning environment
    (``CUDA_VISIBLE_DEVICES`` by UUID, thread counts, CPU affinity), so CUDA in
    the objective only ever sees the slot's device; it joins the study through
    its storage and runs trials one after the other with a
    :class:`HardwareAwareSampler` restricted to its slot (the study's own
    ``HardwareAwareSampler`` settings are kept; any other sampler becomes its
    base sampler), so ``device_for(trial)`` and the ``hwaware:*`` placement
    attributes are right. Each trial also records ``hwaware:node``,
    ``hwaware:worker_pid`` (with ``hwaware:worker_started``, written when the
    trial becomes RUNNING, before the worker hears of it) and the real
    ``hwaware:slot_id``.

    - ``n_trials`` counts new trials across all workers, exactly; queued
      retries run on top of it. Without ``n_trials`` and ``timeout`` it runs
      until interrupted.
    - An objective that raises fails its trial (``hwaware:fail_reason`` =
      ``"error: ..."``, or ``"oom: ..."`` for out-of-memory) and the run goes on.
    - A worker that dies (``os._exit``, a signal, a segfault) fails its trial
      with ``"crash: ..."`` (``"crash: worker died before the objective
      started: ..."`` while the sampler placed it), gives its lease back and
      is replaced; with ``max_retries`` a crashed or timed-out trial is queued
      again (same parameters, user attribute ``hwaware:retry``) and placed
      afresh by the next free worker.
    - A trial that ran out of device memory gets a larger memory need
      (``hwaware:memory_need_mb``: the device's memory x 1.5) and, with
      ``max_retries``, is queued again for a device whose free memory holds it;
      the decision is logged as a warning and recorded in ``hwaware:oom_action``
      (``"not re-placed: ..."`` when no device of this node is big enough).
    - ``trial_timeout`` counts from the objective's start (not a fresh worker's
      warm-up); past it the worker's process group is killed and the trial
      fails with ``"timeout: ..."``; with ``max_retries`` it is queued again too.
    - Processes the objective spawned are killed when its trial ends (SIGTERM,
      SIGKILL 3 s later).
    - Ctrl-C or SIGTERM kills every worker's process group, fails their trials
      with ``"interrupted"`` and re-raises; nothing is left running.
    - Calling it again on a journal-file or SQLite study after the process
      died (even by SIGKILL) fails the trials its workers left RUNNING
      (``"crash: ..."``, found by their recorded pid) and, with
      ``max_retries``, queues them again.

    An in-memory study is copied into a journal file in the working folder
    (logged at INFO); its new trials are copied back into ``study`` at the end.

    Cost: one interpreter start and study load per worker (about a second),
    then per trial one ticket round-trip over a pipe on top of the trial itself.

    :param study: the study; its storage must be reachable by child processes.
    :param objective: a picklable callable (cloudpickle: module-level functions,
        lambdas and closures over picklable values).
    :param n_trials: new trials to run in total (``None``: no limit).
    :param timeout: seconds after which no new trial starts.
    :param devices: ``None`` (the study's ``HardwareAwareSampler`` devices, else
        probe this node or ``$HWAWARE_DEVICES``), a declared-device file, or a
        list of ``Device``.
    :param executor: ``"local"`` (the only one: worker processes on this node;
        use ``hwaware worker`` on each node for several).
    :param max_retries: how often a crashed, OOM or timed-out trial is queued again.
    :param trial_timeout: seconds a trial's objective may run, or a mapping from
        subspace key (``hwaware:subspace``) to seconds with ``"*"`` for the rest
        (:func:`hwaware_plugins.executors.timeout_for`).
    :returns: the study holding the results: ``study`` itself, or for an
        in-memory study its journal-file copy (``study`` also gets the trials).
    :raises ConfigError: invalid arguments, an unpicklable objective, devices
        that cannot be pinned, or a worker that cannot join the study.
    """
    check_count("n_trials", n_trials, low=0)
    check_seconds("timeout", timeout)
    check_trial_timeout(trial_timeout, "trial_timeout")
    check_count("max_retries", max_retries, low=0, allow_none=False)
    if executor not in EXECUTORS:
        raise ConfigError(
            f"unknown executor {executor!r}; optimize supports {', '.join(EXECUTORS)} (run "
            "'hwaware worker' on every node to spread a study over several)"
        )
    check_picklable(objective)
    sampler = study.sampler
    hw = sampler if isinstance(sampler, HardwareAwareSampler) else None
    resolved = resolve_devices(devices if devices is not None or hw is None else hw.devices)
    pool = DevicePool(
        resolved,
        name=hw.pool_name if hw else "default",
        state_dir=hw.state_dir if hw else None,
        skip_foreign_processes=hw.skip_foreign_processes if hw else True,
    )
    slots = sum(capacity.slots_free for capacity in pool.free_capacity().values())
    if n_trials == 0:
        return study
    in_memory = isinstance(study._storage, InMemoryStorage)
    shared = journal_copy(study, os.getcwd()) if in_memory else study
    before = len(shared.get_trials(deepcopy=False))
    node = node_name(resolved)
    oom = OomPolicy(max_retries=max_retries, memory_fraction=pool.memory_fraction,
                    devices=tuple(resolved))
    supervisor = Supervisor(
        shared,
        pool=pool,
        spec_for=spec_factory(shared, objective, sampler=sampler, node=node, oom=oom,
                              kill_grace_s=KILL_GRACE_S),
        budget=LocalBudget(n_trials),
        node=node,
        max_workers=max(1, min(slots, n_trials) if n_trials else slots),
        timeout=timeout,
        trial_timeout=trial_timeout,
        max_retries=max_retries,
        kill_grace_s=KILL_GRACE_S,
        python=sys.executable,
    )
    try:
        with sigterm_as_exit():
            summary = supervisor.run()
    finally:
        if in_memory:
            _copy_back(shared, study, before)
    _report(summary)
    return shared


def _copy_back(source: optuna.Study, target: optuna.Study, before: int) -> None:
    new = [t for t in source.get_trials(deepcopy=True) if t.number >= before]
    target.add_trials([t for t in new if t.state.is_finished()])


def _report(summary: Summary) -> None:
    _log.info(
        "optimize: %d trials started by %d worker processes (%d crashed, %d timed out, "
        "%d retried; %d left RUNNING by dead workers failed)", summary.started,
        summary.workers_started, summary.crashed, summary.timed_out, summary.retried,
        summary.recovered,
    )
