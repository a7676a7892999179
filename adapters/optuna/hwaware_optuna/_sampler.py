"""``HardwareAwareSampler``: lease a device per trial, let the scheduler pick the subspace."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optuna.samplers import BaseGASampler, BaseSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState

from hwaware_optuna import _attrs, _devices
from hwaware_optuna._placement import (
    Placement,
    acquire_slot,
    branch_value,
    choose_branch,
    member_of,
    placement_attrs,
)
from hwaware_optuna._runtime import (
    FamilyOf,
    SamplerRuntime,
    build_runtime,
    check_lease_timeout,
    check_seed,
    check_settings,
    set_up_scheduler,
)
from hwaware_optuna._view import StudyView, TrialFilter, as_study
from hwaware_plugins.attrs import FAIL_REASON
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.events import TrialFinished, TrialPlaced, emit
from hwaware_plugins.executors._payload import one_line

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study

    from hwaware_plugins.hardware import Device
    from hwaware_plugins.hardware._lease import Lease
    from hwaware_plugins.scheduling._history import History

_log = logging.getLogger(__name__)

MEMORY_HEADROOM = 1.2
"""With ``packing="memory"``, a trial asks for this times the largest peak memory reported."""

UNSEEN_BRANCH_TRIALS = 10
"""Completed trials after which a declared ``branch_params`` name none of them used is warned of."""


class HardwareAwareSampler(BaseSampler):
    """Place each trial on a leased device and sample it inside the subspace a scheduler picks.

    For every trial (``before_trial``): lease a device slot from a
    :class:`~hwaware_plugins.hardware._pool.DevicePool` (blocking until one is
    free, or ``lease_timeout``), let the scheduler choose the subspace for
    that device's class, and write the placement to the trial's user
    attributes (``hwaware:device_id``, ``hwaware:device_class``,
    ``hwaware:subspace``, ...; see :mod:`hwaware_optuna._attrs`). Sampling is
    delegated to ``base_sampler``: branching parameters take the subspace's
    values; the others are sampled by the base sampler seeing only that
    subspace's trials (a genetic base sampler, NSGA-II or NSGA-III, counts its
    generations over the whole study and so sees every trial, as without
    hwaware). When the trial ends (``after_trial``, also on failure
    and pruning) its runtime is stored, it enters the scheduler's history and
    the lease is released. :func:`~hwaware_optuna.device_for` tells the
    objective its device.

    Subspaces are learned define-by-run: a subspace is the set of values that
    completed trials gave to the branching categoricals (detected, or named in
    ``branch_params``); values no trial used yet are subspaces of their own, so
    none is starved. Until something branches, trials explore the whole space
    (subspace ``"*"``). A trial with fixed parameters (``enqueue_trial``, a
    retry) is placed too, in the subspace its fixed branching values imply.

    The history is rebuilt from the study's storage (in-memory, SQLite, RDB,
    journal), so processes sharing a study share what the scheduler knows.
    Multi-objective studies: the base sampler sees every objective; the
    scheduler's losses are the first objective (negated when maximised).

    Thread-safe for ``study.optimize(n_jobs=...)``: one lease per trial, a lock
    around the scheduler and the history. Cost per trial on top of the base
    sampler: one lease acquire and release (a locked state-file update each),
    a scan of the trials that finished since the oldest running one, nine
    user-attribute writes and one scheduler decision; the base sampler's
    trial list is filtered once per trial (one predicate per past trial).
    Measured: about 0.6 ms per trial, see ``benchmarks/bench_optuna_overhead.py``.

    ``seed`` makes the base sampler's and the scheduler's draws repeatable;
    the ``hwaware`` scheduler also learns from measured runtimes, so two runs
    with one seed can still place trials differently.

    Arguments are stored as given and validated at first use (the first
    trial, or ``reseed_rng``; ``optimize`` checks them before its first trial;
    a bad ``seed`` with the default base sampler, which is built with it, at
    construction): a bad one raises a one-line ``ConfigError``
    (or ``DeviceConfigError``, ``UnknownComponentError``) and the trial being
    started is marked failed, so no RUNNING trial is left in the storage.
    A ``branch_params`` name that none of the first
    :data:`UNSEEN_BRANCH_TRIALS` completed trials suggested is warned of once.

    Picklable and deep-copyable (Optuna's FAQ way of saving a sampler,
    ``joblib.dump(study)``, Ray Tune): the copy keeps the arguments and the
    base sampler's state and rebuilds its pool, scheduler and history from the
    study's storage at its next trial. Leases of trials running while it was
    pickled stay with the original.

    :param base_sampler: samples inside the subspace (default ``TPESampler(seed=seed)``).
    :param scheduler: a registered scheduler name (``"hwaware"``, ``"shadho"``,
        ``"fcfs"``) or an object with ``setup``/``choose``.
    :param devices: ``None`` (probe this machine, or the ``HWAWARE_DEVICES``
        file), a declared-device TOML file, or a list of ``Device``.
    :param branch_params: names of parameters that branch, in addition to
        the detected ones (categorical or integer parameters).
    :param seed: seeds the default base sampler and the scheduler.
    :param packing: ``"exclusive"`` or ``"memory"`` (GPUs hold several trials
        while :data:`MEMORY_HEADROOM` x the largest reported peak fits).
    :param skip_foreign_processes: never lease a GPU other processes use.
    :param lease_timeout: seconds to wait for a slot (``None``: for ever);
        past it the trial's ``ask`` raises ``LeaseTimeoutError``. Each asked trial
        holds a slot until it is told, so asking more trials than slots before a
        ``tell`` waits for another thread's ``tell`` (a warning is logged when every
        slot is held by the waiting thread's own trials).
    :param pool_name: processes of a node using the same pool name share slots.
    :param state_dir: folder of the pool's lease state (default per user).
    :param complexity_rule: the rule giving each subspace's complexity.
    :param family_of: maps a subspace's branch values to a workload family
        (the keys of ``[device.speedup]``), or ``None``.
    """

    def __init__(
        self,
        base_sampler: BaseSampler | None = None,
        *,
        scheduler: Any = "hwaware",
        devices: str | os.PathLike[str] | Sequence[Device] | None = None,
        branch_params: Sequence[str] | None = None,
        seed: int | None = None,
        packing: str = "exclusive",
        skip_foreign_processes: bool = True,
        lease_timeout: float | None = None,
        pool_name: str = "default",
        state_dir: str | os.PathLike[str] | None = None,
        complexity_rule: str = "hwaware",
        family_of: FamilyOf | None = None,
    ) -> None:
        self.base_sampler = base_sampler
        self.scheduler = scheduler
        self.devices = devices
        self.branch_params = branch_params
        self.seed = seed
        self.packing = packing
        self.skip_foreign_processes = skip_foreign_processes
        self.lease_timeout = lease_timeout
        self.pool_name = pool_name
        self.state_dir = state_dir
        self.complexity_rule = complexity_rule
        self.family_of = family_of
        if base_sampler is None:
            check_seed(seed)  # the default base sampler is built here, with the seed
        self._base = base_sampler if base_sampler is not None else TPESampler(seed=seed)
        self._lock = threading.Lock()
        self._runtime: SamplerRuntime | None = None
        self._placements: dict[int, Placement] = {}
        self._unseen_branches: set[str] | None = None
        self._completed = 0

    def __str__(self) -> str:
        return f"HardwareAwareSampler({self._base})"

    def __getstate__(self) -> dict[str, Any]:
        """The arguments and the base sampler; not the lock, pool, leases or history."""
        with self._lock:
            state = self.__dict__.copy()
        for name in ("_lock", "_runtime", "_placements"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the arguments; the working parts are rebuilt at the next trial."""
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._runtime = None
        self._placements = {}

    @property
    def branch_names(self) -> frozenset[str]:
        """The branching parameters in use (declared and detected so far); thread-safe."""
        with self._lock:
            if self._runtime is None:
                return frozenset(self.branch_params or ())
            return self._runtime.tracker.branch_names

    @property
    def subspaces(self) -> list[str]:
        """The keys of the subspaces known so far (empty while trials explore freely)."""
        with self._lock:
            return [] if self._runtime is None else list(self._runtime.tracker.subspaces)

    @property
    def history(self) -> History | None:
        """The scheduler's history: this process's trials, and others' as of the last trial start.

        ``None`` before the first trial. Rebuilt from the study's storage, so it
        includes other processes' trials. Read it, do not record into it.
        """
        with self._lock:
            if self._runtime is None:
                return None
            self._runtime.tracker.refresh()
            return self._runtime.tracker.history

    # -- optuna's sampler interface ------------------------------------------------------------

    def reseed_rng(self) -> None:
        """Reseed the base sampler (optuna calls it per thread with ``n_jobs > 1``).

        :raises ConfigError: ``base_sampler`` is not an optuna sampler.
        """
        _check_base(self._base)
        self._base.reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Lease a device, choose the subspace, record the placement; see the class doc.

        Any error (a bad argument, no device within ``lease_timeout``) marks the
        trial failed before it propagates, so it does not stay RUNNING.
        """
        try:
            runtime = self._get_runtime()
            timeout = check_lease_timeout(self.lease_timeout)
            with self._lock:
                runtime.check_study(study._storage, study._study_id)
                self._sync(study, runtime)
                memory_mb = self._memory_need(runtime)
            lease = self._acquire(
                runtime, memory_mb=memory_mb, timeout=timeout,
                label=f"{study.study_name}#{trial.number}",
            )
        except BaseException as exc:
            _abandon(study, trial, exc)
            raise
        try:
            with self._lock:
                self._refresh(runtime)  # other threads may have finished trials meanwhile
                branch, key = choose_branch(runtime, trial, lease.device.device_class)
                # A genetic sampler's generations are counted over the whole study: it
                # sees every trial, as it does without hwaware (a view broke its parents).
                trial_filter = (TrialFilter(member_of(branch))
                                if branch and not isinstance(self._base, BaseGASampler) else None)
                placement = Placement(lease, branch, key, time.monotonic(), trial_filter)
                self._placements[trial._trial_id] = placement
            _devices.register(study._storage, trial._trial_id, lease.device)
            for name, value in placement_attrs(trial, lease, key).items():
                study._storage.set_trial_user_attr(trial._trial_id, name, value)
                # ``trial`` is the running Trial's cached copy: keep it in step (as set_user_attr).
                trial.user_attrs[name] = value
            emit(
                "hwaware_trial_placed",
                TrialPlaced(
                    framework="optuna",
                    trial_id=f"{study.study_name}#{trial.number}",
                    device_id=lease.device.id,
                    device_class=lease.device.device_class,
                    subspace=key,
                    scheduler=runtime.scheduler_name,
                ),
            )
            self._base.before_trial(self._view(study, placement), trial)
        except BaseException as exc:
            with self._lock:
                self._placements.pop(trial._trial_id, None)
            _devices.unregister(study._storage, trial._trial_id)
            lease.release()
            _abandon(study, trial, exc)
            raise

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """The base sampler's relative space in the trial's subspace, minus branch parameters."""
        placement = self._placement(trial)
        space = self._base.infer_relative_search_space(self._view(study, placement), trial)
        if placement is not None:
            for name, _ in placement.branch:
                space.pop(name, None)
        return space

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """The base sampler's relative sample, seeing only the subspace's trials."""
        view = self._view(study, self._placement(trial))
        return self._base.sample_relative(view, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """A branch parameter's subspace value, else the base sampler's sample in the subspace."""
        placement = self._placement(trial)
        if placement is not None:
            fixed, value = branch_value(placement.branch, param_name, param_distribution)
            if fixed:
                return value
            if any(name == param_name for name, _ in placement.branch):
                _log.warning(
                    "trial %d: subspace value %r of %r is outside %s; sampling it instead",
                    trial.number,
                    value,
                    param_name,
                    param_distribution,
                )
        view = self._view(study, placement)
        return self._base.sample_independent(view, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Record runtime and outcome in the history and release the lease (always)."""
        try:
            self._base.after_trial(study, trial, state, values)
        finally:
            self._finish(study, trial, state, values)

    # -- internals ---------------------------------------------------------------------------

    def _check_settings(self) -> None:
        """Validate every argument but the devices (``optimize`` checks them in the
        coordinator before its first trial); the scheduler is loaded to check it, then
        dropped. Cost: microseconds for the built-in schedulers."""
        _check_base(self._base)
        _check_family_of(self.family_of)
        check_lease_timeout(self.lease_timeout)
        check_settings(
            scheduler=self.scheduler, seed=self.seed, branch_params=self.branch_params,
            skip_foreign_processes=self.skip_foreign_processes,
            complexity_rule=self.complexity_rule,
        )

    def _get_runtime(self) -> SamplerRuntime:
        with self._lock:
            if self._runtime is None:
                _check_base(self._base)
                _check_family_of(self.family_of)
                self._runtime = build_runtime(
                    devices=self.devices,
                    scheduler=self.scheduler,
                    seed=self.seed,
                    branch_params=self.branch_params,
                    packing=self.packing,
                    skip_foreign_processes=self.skip_foreign_processes,
                    pool_name=self.pool_name,
                    state_dir=self.state_dir,
                    complexity_rule=self.complexity_rule,
                )
            return self._runtime

    def _acquire(
        self, runtime: SamplerRuntime, *, memory_mb: float | None, timeout: float | None,
        label: str,
    ) -> Lease:
        """The trial's device slot: a lease from the pool (a placed worker overrides it)."""
        return acquire_slot(runtime.pool, memory_mb=memory_mb, timeout=timeout, label=label)

    def _sync(self, study: Study, runtime: SamplerRuntime) -> None:
        """Add trials other threads or processes finished; set the scheduler up if needed."""
        runtime.tracker.scan(study._get_trials(deepcopy=False, use_cache=True), study.directions)
        self._refresh(runtime)

    def _refresh(self, runtime: SamplerRuntime) -> None:
        runtime.tracker.refresh()
        set_up_scheduler(runtime, complexity_rule=self.complexity_rule, family_of=self.family_of)

    def _memory_need(self, runtime: SamplerRuntime) -> float | None:
        peak = runtime.tracker.max_peak_memory_mb
        if self.packing != "memory" or not peak:
            return None
        return peak * MEMORY_HEADROOM

    def _placement(self, trial: FrozenTrial) -> Placement | None:
        with self._lock:
            return self._placements.get(trial._trial_id)

    @staticmethod
    def _view(study: Study, placement: Placement | None) -> Study:
        if placement is None or placement.filter is None:
            return study
        return as_study(StudyView(study, placement.filter))

    def _finish(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with self._lock:
            placement = self._placements.pop(trial._trial_id, None)
        if placement is None:
            return
        device = placement.lease.device
        try:
            runtime_s = time.monotonic() - placement.started
            try:
                study._storage.set_trial_user_attr(trial._trial_id, _attrs.RUNTIME_S, runtime_s)
            except Exception:  # the trial must still end and free its device
                _log.warning("trial %d: could not store its runtime", trial.number, exc_info=True)
            if state == TrialState.COMPLETE:
                self._note_params(trial.params)
            outcome = _attrs.outcome_of(
                trial, study.directions, state=state, values=values, runtime_s=runtime_s
            )
            if outcome is not None and self._runtime is not None:
                outcome = dataclasses.replace(
                    outcome,
                    device_class=device.device_class,
                    placed_subspace=placement.key,
                    finished_at=time.time(),
                )
                with self._lock:
                    self._runtime.tracker.add(outcome)
                emit(
                    "hwaware_trial_finished",
                    TrialFinished(
                        framework="optuna",
                        trial_id=f"{study.study_name}#{trial.number}",
                        device_id=device.id,
                        device_class=device.device_class,
                        subspace=placement.key,
                        state=outcome.state,
                        runtime_s=runtime_s,
                        loss=outcome.loss,
                        peak_memory_mb=outcome.peak_memory_mb,
                    ),
                )
        finally:
            _devices.unregister(study._storage, trial._trial_id)
            placement.lease.release()

    def _note_params(self, params: dict[str, Any]) -> None:
        """Warn once when declared branch parameters never appear in completed trials."""
        with self._lock:
            if self._unseen_branches is None:
                declared = self.branch_params or ()
                self._unseen_branches = {n for n in declared if isinstance(n, str)}
            if not self._unseen_branches:
                return
            self._unseen_branches -= params.keys()
            self._completed += 1
            if self._completed < UNSEEN_BRANCH_TRIALS or not self._unseen_branches:
                return
            unseen, self._unseen_branches = sorted(self._unseen_branches), set()
        warnings.warn(
            f"branch_params names {', '.join(map(repr, unseen))} but none of the first "
            f"{UNSEEN_BRANCH_TRIALS} completed trials suggested it; check the spelling "
            "against the names your objective passes to trial.suggest_*",
            UserWarning,
            stacklevel=2,
        )


def _check_base(base: object) -> None:
    """Refuse a ``base_sampler`` that is not an optuna sampler (e.g. the string ``"tpe"``)."""
    if not isinstance(base, BaseSampler):
        raise ConfigError(
            f"base_sampler must be an optuna sampler object such as "
            f"optuna.samplers.TPESampler(), got {base!r}"
        )


def _check_family_of(family_of: object) -> None:
    """Refuse a ``family_of`` that cannot be called."""
    if family_of is not None and not callable(family_of):
        raise ConfigError(
            "family_of must be None or a function mapping a subspace's branch values "
            f"(a dict) to a workload family name, got {family_of!r}"
        )


def _abandon(study: Study, trial: FrozenTrial, error: BaseException | None) -> None:
    """Mark a trial that could not be placed as failed, with ``hwaware:fail_reason`` saying
    why, so it does not stay RUNNING for ever."""
    try:
        if error is not None:
            reason = f"error: placing the trial failed: {one_line(error)}"
            study._storage.set_trial_user_attr(trial._trial_id, FAIL_REASON, reason)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    except Exception:  # already finished elsewhere, or the storage is gone: nothing to undo
        _log.debug("could not mark trial %d as failed", trial.number, exc_info=True)
