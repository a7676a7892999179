"""Pieces :func:`hwaware_optuna.optimize` and ``hwaware worker`` share: checks, the run."""

from __future__ import annotations

import logging
import math
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from hwaware_optuna._budget import Budget
from hwaware_optuna._coordinator import Coordinator, Summary
from hwaware_optuna._cost_pruner import CostAwarePruner
from hwaware_optuna._oom import OomPolicy
from hwaware_optuna._sampler import HardwareAwareSampler
from hwaware_optuna._subspace_pruner import SubspacePruner, check_base_pruner
from hwaware_optuna._trial_task import RunSpec
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.executors import TrialTimeout
from hwaware_plugins.executors._payload import TaskSerializationError, dumps
from hwaware_plugins.hardware import Device, this_host
from hwaware_plugins.hardware._pool import DevicePool

_log = logging.getLogger("hwaware_optuna")

KILL_GRACE_S = 3.0
"""Seconds between SIGTERM and SIGKILL when a worker's process group is killed."""


def check_count(name: str, value: object, *, low: int, allow_none: bool = True) -> int | None:
    """``value`` as an int >= ``low`` (or ``None`` when allowed).

    :raises ConfigError: anything else, naming ``name``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def check_seconds(name: str, value: object, unit: str = "seconds") -> float | None:
    """``None`` or a finite number (of ``unit``) > 0.

    :raises ConfigError: anything else, naming ``name``.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and value > 0
    ):
        raise ConfigError(f"{name} must be None or a number of {unit} > 0, got {value!r}")
    return float(value)


def check_picklable(objective: object) -> None:
    """Fail early, in one line, when the objective cannot be sent to worker processes.

    :raises ConfigError: not callable or not picklable (cloudpickle). Cost: one pickling.
    """
    if not callable(objective):
        raise ConfigError(f"the objective must be a callable taking a trial, got {objective!r}")
    try:
        dumps(objective)
    except Exception as exc:
        text = " ".join(str(exc).split())
        raise TaskSerializationError(
            f"the objective {getattr(objective, '__qualname__', objective)!r} cannot be sent to "
            f"worker processes ({type(exc).__name__}: {text}); define it at module level and "
            "let it capture only picklable values"
        ) from exc


def check_components(sampler: object, pruner: object) -> None:
    """Validate the study's ``HardwareAwareSampler`` and hwaware pruners in the coordinator.

    The workers build them: an invalid setting found there would fail every trial
    of the run one by one instead of stopping it before the first.

    :raises ConfigError: the first invalid setting.
    """
    if isinstance(sampler, HardwareAwareSampler):
        sampler._check_settings()
    while isinstance(pruner, SubspacePruner):
        check_base_pruner(pruner.base_pruner)
        pruner = pruner.base_pruner
    if isinstance(pruner, CostAwarePruner):
        pruner._check()


def node_name(devices: Sequence[Device]) -> str:
    """The host all ``devices`` share, else this machine's host name."""
    hosts = {device.host for device in devices}
    return hosts.pop() if len(hosts) == 1 else this_host()


def sampler_settings(sampler: optuna.samplers.BaseSampler) -> tuple[dict[str, Any], bool]:
    """How the worker processes build their slot's sampler from the study's sampler.

    Returns the keyword arguments of their
    :class:`~hwaware_optuna._placed.PlacedSampler` and whether each worker
    reseeds it. A ``HardwareAwareSampler`` keeps its settings (its default
    base sampler is seeded per trial); any other sampler becomes the base
    sampler, reseeded in each worker as optuna does per thread.
    """
    if isinstance(sampler, HardwareAwareSampler):
        kwargs: dict[str, Any] = {
            "base_sampler": sampler.base_sampler,
            "scheduler": sampler.scheduler,
            "branch_params": sampler.branch_params,
            "seed": sampler.seed,
            "complexity_rule": sampler.complexity_rule,
            "family_of": sampler.family_of,
        }
        return kwargs, sampler.base_sampler is not None
    return {"base_sampler": sampler}, True


def run_coordinator(
    study: optuna.Study,
    objective: Callable[..., Any],
    pool: DevicePool,
    *,
    node: str,
    budget: Budget,
    timeout: float | None,
    max_retries: int,
    trial_timeout: TrialTimeout,
    memory_mb: float | None = None,
    on_trial_end: Callable[[Summary], None] | None = None,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
) -> Summary:
    """Run ``study``'s trials on ``pool`` with a :class:`Coordinator`, SIGTERM as an exit.

    The run's :class:`RunSpec` takes the study's sampler settings, its pruner and an
    :class:`OomPolicy` sized by ``pool``; the storage object is pickled along
    to every worker (RDB and journal storages are picklable). Blocks; returns
    the coordinator's :class:`Summary`.
    """
    devices = tuple(pool.devices)
    kwargs, reseed = sampler_settings(study.sampler)
    oom = OomPolicy(max_retries=max_retries, memory_fraction=pool.memory_fraction,
                    devices=devices, exclusive=pool.packing != "memory")
    spec = RunSpec(
        storage=study._storage, study_name=study.study_name, objective=objective,
        sampler=kwargs, reseed=reseed, devices=devices, node=node,
        trial_timeout=trial_timeout, oom=oom, optuna_verbosity=optuna.logging.get_verbosity(),
        pruner=study.pruner,
    )
    coordinator = Coordinator(
        study, pool=pool, spec=spec, budget=budget, node=node, timeout=timeout,
        max_retries=max_retries, memory_mb=memory_mb, kill_grace_s=KILL_GRACE_S,
        on_trial_end=on_trial_end, callbacks=callbacks,
    )
    with sigterm_as_exit() as coordinator.check_signals:
        return coordinator.run()


def _memory_folder() -> str | None:
    """``/dev/shm`` when it is a writable folder (the journal's fsyncs cost nothing there),
    else ``None`` (the default temporary folder)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


@contextmanager
def journal_copy(study: optuna.Study) -> Iterator[optuna.Study]:
    """Copy an in-memory study into a journal file in a temporary folder, removed on exit.

    The folder is in ``/dev/shm`` where there is one: the journal syncs every
    write to disk, which costs milliseconds per write on a busy disk and
    nothing in memory. Yields the copy; logs one INFO message. Cost: one write
    per trial.
    """
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    with tempfile.TemporaryDirectory(prefix="hwaware-study-", dir=_memory_folder()) as folder:
        path = Path(folder) / "study.hwaware-journal.log"
        storage = JournalStorage(JournalFileBackend(str(path)))
        journal_log = logging.getLogger("optuna.storages.journal._storage")
        journal_log.addFilter(_no_study_created_line)
        try:
            optuna.copy_study(
                from_study_name=study.study_name, from_storage=study._storage, to_storage=storage
            )
        finally:
            journal_log.removeFilter(_no_study_created_line)
        _log.info(
            "study %r is in memory, which worker processes cannot share: running it in the "
            "temporary journal file %s (results are copied back)", study.study_name, path,
        )
        yield optuna.load_study(study_name=study.study_name, storage=storage,
                                sampler=study.sampler, pruner=study.pruner)


def _no_study_created_line(record: logging.LogRecord) -> bool:
    """Drop Optuna's "A new study created in Journal" line for the temporary copy: the
    user made no new study, and the INFO line above says what the copy is."""
    return not record.getMessage().startswith("A new study created")


@contextmanager
def sigterm_as_exit() -> Iterator[Callable[[], None]]:
    """In the main thread, turn SIGTERM into ``SystemExit(143)`` while the block runs.

    Yields a check to call at safe points: it raises that ``SystemExit`` again when
    SIGTERM came but its exception was lost (Python drops an exception raised by a
    signal handler that runs inside a weakref or garbage-collector callback).
    """
    received: list[int] = []

    def check() -> None:
        if received:
            raise SystemExit(128 + received[0])

    if threading.current_thread() is not threading.main_thread():
        yield check
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield check
    finally:
        signal.signal(signal.SIGTERM, previous)
