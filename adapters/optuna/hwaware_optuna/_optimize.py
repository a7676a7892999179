"""``optimize``: run a study's trials in worker processes pinned to leased device slots."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import optuna
from optuna.storages import InMemoryStorage
from optuna.trial import FrozenTrial, TrialState

from hwaware_optuna._budget import LocalBudget
from hwaware_optuna._optimize_setup import (
    check_components,
    check_count,
    check_picklable,
    check_seconds,
    journal_copy,
    node_name,
    run_coordinator,
)
from hwaware_optuna._sampler import HardwareAwareSampler
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
    memory_mb: float | None = None,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
) -> optuna.Study:
    """Optimize ``study`` in worker processes pinned to leased device slots of this node.

    Each trial takes one lease: the coordinator (this process) makes the trial
    RUNNING in the study's storage and submits it to a
    :class:`~hwaware_plugins.executors.LocalExecutor`, which leases a slot and
    runs it in a worker process pinned to it (``CUDA_VISIBLE_DEVICES`` by
    UUID or index, thread counts, CPU affinity), so CUDA in the objective
    only ever sees the slot's device. The worker joins the study once
    (through its storage) and rebuilds the trial from it by id; the study's
    ``HardwareAwareSampler`` settings (any other sampler becomes its base
    sampler) choose the subspace for the slot's device class there, so
    ``device_for(trial)`` and the ``hwaware:*`` placement attributes are
    right. Each trial also records ``hwaware:node``, ``hwaware:worker_pid``
    (with ``hwaware:worker_started``) and the real ``hwaware:slot_id``. How
    long a worker process lives (one per trial, or reused) is the executor's
    business; see ``docs/executors.md``.

    - ``n_trials`` counts new trials, exactly; queued retries run on top of it.
      Without ``n_trials`` and ``timeout`` it runs until interrupted.
    - An objective that raises fails its trial (``hwaware:fail_reason`` =
      ``"error: ..."``, or ``"oom: ..."`` for out-of-memory) and the run goes on.
    - A worker that dies (``os._exit``, a signal, a segfault) fails its trial
      with ``"crash: ..."`` (``"crash: worker died before the objective
      started: ..."`` while the sampler placed it); its lease comes back. With
      ``max_retries`` a crashed or timed-out trial is queued again (same
      parameters, user attribute ``hwaware:retry``) and placed afresh.
    - A trial that ran out of device memory gets a larger memory need
      (``hwaware:memory_need_mb``) and, with ``max_retries``, is queued again
      and leased only where that need fits (the same GPU at lower packing when
      the sampler packs by memory, else a GPU with more memory); the decision
      is logged as a warning and recorded in ``hwaware:oom_action``
      (``"not re-placed: ..."`` when no device of this node is big enough).
    - With ``HardwareAwareSampler(packing="memory")`` a GPU holds several
      trials: each asks for ``memory_mb`` until trials report their peak
      (:func:`~hwaware_optuna.report_peak_memory`), then for 1.2 x the largest
      peak reported.
    - ``trial_timeout`` counts from the objective's start (not a fresh worker's
      warm-up); past it the trial fails with ``"timeout: ..."`` and its worker
      process group is killed; with ``max_retries`` it is queued again too.
    - ``callbacks`` are called as ``Study.optimize`` calls them, in this
      process after each trial ends; ``study.stop()`` there, in the objective
      (``trial.study.stop()``) or in a base sampler (``GridSampler`` once its
      grid is done) starts no new trial and lets the running ones finish.
    - The study's pruner decides ``trial.should_prune()`` in the workers.
    - A value that is not a number (``None``, ``nan``) fails the trial with
      ``hwaware:fail_reason`` = ``"error: the objective returned ..."``.
    - Ctrl-C or SIGTERM kills every worker's process group, fails their trials
      with ``"interrupted"`` and re-raises; nothing is left running.
    - Once every trial has ended the call returns, and the idle workers leave
      while the caller goes on (closing the joblib pools their objectives kept);
      interpreter exit waits for them, so nothing is left once the script ends.
    - Calling it again on a journal-file or SQLite study after the process
      died (even by SIGKILL) fails the trials left RUNNING by its dead
      processes (``"crash: ..."``, found by their recorded pid) and, with
      ``max_retries``, queues them again.

    An in-memory study is run in a journal file in a temporary folder (logged
    at INFO, removed at the end); its new trials are copied back into ``study``,
    and so are the results of trials it had queued (``enqueue_trial``): their
    start and end times become the time of the copy.

    Cost per trial on top of the objective: one lease, the pickling of a small
    task, and about ten storage reads and writes; a worker's first trial also
    pays its interpreter start, imports and study load.

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
    :param memory_mb: device memory (MiB) a trial declares it needs, for a
        memory-packed sampler until peaks are reported (``None``: the pool's
        default packing).
    :param callbacks: called as ``callback(study, frozen_trial)`` after each
        trial ends (the study is the run's: the temporary journal copy of an
        in-memory study). ``catch`` has no counterpart: every exception of the
        objective fails its trial and the run goes on.
    :returns: the study holding the results (``study`` itself).
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
    check_seconds("memory_mb", memory_mb, unit="MiB")
    if callbacks is not None and (callable(callbacks) or not isinstance(callbacks, Iterable)):
        raise ConfigError(
            f"callbacks must be a list of callables (study, trial), got {callbacks!r}"
        )
    callbacks = list(callbacks or ())
    for callback in callbacks:
        if not callable(callback):
            raise ConfigError(f"callbacks must be callables (study, trial), got {callback!r}")
    check_picklable(objective)
    sampler = study.sampler
    hw = sampler if isinstance(sampler, HardwareAwareSampler) else None
    check_components(sampler, study.pruner)
    resolved = resolve_devices(devices if devices is not None or hw is None else hw.devices)
    pool = DevicePool(
        resolved,
        name=hw.pool_name if hw else "default",
        packing=hw.packing if hw else "exclusive",
        state_dir=hw.state_dir if hw else None,
        skip_foreign_processes=hw.skip_foreign_processes if hw else True,
    )
    pool.check()
    if n_trials == 0:
        return study
    settings: dict[str, Any] = {
        "n_trials": n_trials, "timeout": timeout, "max_retries": max_retries,
        "trial_timeout": trial_timeout, "memory_mb": memory_mb, "callbacks": callbacks,
    }
    if isinstance(study._storage, InMemoryStorage):
        original = study.get_trials(deepcopy=False)
        with journal_copy(study) as shared:
            try:
                _run(shared, objective, pool, **settings)
            finally:
                _copy_back(shared, study, original)
        return study
    _run(study, objective, pool, **settings)
    return study


def _run(study: optuna.Study, objective: Callable[..., Any], pool: DevicePool, *,
         n_trials: int | None, timeout: float | None, max_retries: int,
         trial_timeout: TrialTimeout, memory_mb: float | None,
         callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]]) -> None:
    summary = run_coordinator(
        study, objective, pool, node=node_name(list(pool.devices)), budget=LocalBudget(n_trials),
        timeout=timeout, max_retries=max_retries, trial_timeout=trial_timeout,
        memory_mb=memory_mb, callbacks=callbacks,
    )
    _log.info(
        "optimize: %d trials run by %d worker processes (%d crashed, %d timed out, "
        "%d retried; %d left RUNNING by dead workers failed)", summary.started,
        summary.workers_started, summary.crashed, summary.timed_out, summary.retried,
        summary.recovered,
    )


def _copy_back(source: optuna.Study, target: optuna.Study,
               original: Sequence[FrozenTrial]) -> None:
    """Copy the run's results from the journal copy into the in-memory ``target``.

    New finished trials are added; trials the target had queued (WAITING) and
    the run finished are written into the target's own trials through the
    storage API (params, attributes, intermediate values, then the state).
    """
    finished = [t for t in source.get_trials(deepcopy=True) if t.state.is_finished()]
    target.add_trials([t for t in finished if t.number >= len(original)])
    queued = {t.number: t._trial_id for t in original if t.state == TrialState.WAITING}
    storage = target._storage
    for trial in finished:
        trial_id = queued.get(trial.number)
        if trial_id is None:
            continue
        if not storage.set_trial_state_values(trial_id, TrialState.RUNNING):
            continue  # another thread of the caller took it meanwhile
        for name, value in trial.params.items():
            distribution = trial.distributions[name]
            storage.set_trial_param(trial_id, name, distribution.to_internal_repr(value),
                                    distribution)
        for key, value in trial.user_attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
        for key, value in trial.system_attrs.items():
            storage.set_trial_system_attr(trial_id, key, value)
        for step, value in trial.intermediate_values.items():
            storage.set_trial_intermediate_value(trial_id, step, value)
        storage.set_trial_state_values(trial_id, trial.state, trial.values)
