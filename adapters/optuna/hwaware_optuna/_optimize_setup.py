"""Pieces :func:`hwaware_optuna.optimize` and ``hwaware worker`` share: checks, specs, samplers."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import optuna

from hwaware_optuna._sampler import HardwareAwareSampler
from hwaware_optuna._worker_protocol import OomPolicy, SamplerSettings, WorkerSpec
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.executors._payload import TaskSerializationError, dumps
from hwaware_plugins.hardware import Device, this_host
from hwaware_plugins.hardware._lease import Lease

_log = logging.getLogger("hwaware_optuna")

KILL_GRACE_S = 3.0
"""Seconds between SIGTERM and SIGKILL when a worker's group or an objective's leftovers die."""


def check_count(name: str, value: object, *, low: int, allow_none: bool = True) -> int | None:
    """``value`` as an int >= ``low`` (or ``None`` when allowed).

    :raises ConfigError: anything else, naming ``name``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def check_seconds(name: str, value: object) -> float | None:
    """``None`` or a finite number of seconds > 0.

    :raises ConfigError: anything else, naming ``name``.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and value > 0
    ):
        raise ConfigError(f"{name} must be None or a number of seconds > 0, got {value!r}")
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


def node_name(devices: Sequence[Device]) -> str:
    """The host all ``devices`` share, else this machine's host name."""
    hosts = {device.host for device in devices}
    return hosts.pop() if len(hosts) == 1 else this_host()


def sampler_settings(sampler: optuna.samplers.BaseSampler, serial: int) -> SamplerSettings:
    """How worker number ``serial`` builds its slot's sampler from the study's sampler.

    A ``HardwareAwareSampler`` keeps its settings (its seed, when given, is
    offset by ``serial`` so workers do not draw the same trials); any other
    sampler becomes the base sampler, reseeded in each worker.
    """
    if isinstance(sampler, HardwareAwareSampler):
        seed = None if sampler.seed is None else sampler.seed + serial
        kwargs: dict[str, Any] = {
            "base_sampler": sampler.base_sampler,
            "scheduler": sampler.scheduler,
            "branch_params": sampler.branch_params,
            "seed": seed,
            "complexity_rule": sampler.complexity_rule,
            "family_of": sampler.family_of,
        }
        return SamplerSettings(kwargs, reseed=sampler.base_sampler is not None)
    return SamplerSettings({"base_sampler": sampler}, reseed=True)


def slot_device(lease: Lease) -> Device:
    """The leased device as a one-slot device (a CPU slot keeps its share of cores)."""
    cores = lease.cpu_affinity
    return dataclasses.replace(
        lease.device, slots=1, cores=len(cores) if cores else lease.device.cores
    )


def spec_factory(
    study: optuna.Study,
    objective: Callable[..., Any],
    *,
    sampler: optuna.samplers.BaseSampler,
    node: str,
    oom: OomPolicy,
    kill_grace_s: float,
) -> Callable[[Lease, int, str], WorkerSpec]:
    """Builds each worker's spec; the storage object is pickled along (RDB and journal are)."""
    verbosity = optuna.logging.get_verbosity()

    def spec_for(lease: Lease, serial: int, folder: str) -> WorkerSpec:
        return WorkerSpec(
            storage=study._storage,
            study_name=study.study_name,
            objective=objective,
            sampler=sampler_settings(sampler, serial),
            device=slot_device(lease),
            slot_id=lease.slot_id,
            node=node,
            state_dir=folder,
            optuna_verbosity=verbosity,
            oom=oom,
            kill_grace_s=kill_grace_s,
        )

    return spec_for


def journal_copy(study: optuna.Study, folder: str | os.PathLike[str]) -> optuna.Study:
    """Copy an in-memory study into a new journal file in ``folder``; return the copy.

    Logs one INFO message with the file's path. Cost: one write per trial.
    """
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study.study_name)
    path = Path(folder) / f"{safe}-{uuid.uuid4().hex[:8]}.hwaware-journal.log"
    storage = JournalStorage(JournalFileBackend(str(path)))
    optuna.copy_study(
        from_study_name=study.study_name, from_storage=study._storage, to_storage=storage
    )
    _log.info(
        "study %r is in memory, which worker processes cannot share: running it in the "
        "journal file %s (results are copied back)", study.study_name, path.resolve(),
    )
    return optuna.load_study(study_name=study.study_name, storage=storage,
                             sampler=study.sampler)


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """In the main thread, turn SIGTERM into ``SystemExit(143)`` while the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
