"""One node joining a shared study: what ``hwaware worker`` runs (see :func:`run_node`)."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

import optuna

from hwaware_optuna._budget import StorageBudget
from hwaware_optuna._coordinator import Summary
from hwaware_optuna._optimize_setup import (
    check_components,
    check_count,
    check_picklable,
    check_seconds,
    node_name,
    run_coordinator,
)
from hwaware_optuna._sampler import HardwareAwareSampler
from hwaware_optuna._trials import finished_non_retries
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.executors._payload import one_line
from hwaware_plugins.executors._timeouts import TrialTimeout, check_trial_timeout
from hwaware_plugins.hardware import resolve_devices
from hwaware_plugins.hardware._pool import DevicePool

_log = logging.getLogger("hwaware_optuna")

DEFAULT_HEARTBEAT_S = 10
"""RDB heartbeat interval: a node silent for twice this long has its running trials failed."""


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` as ``postgresql+psycopg2://`` when only psycopg2 is installed.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3. Other URLs are returned as given.
    """
    if not url.startswith("postgresql://"):
        return url
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def open_storage(url: str, *, heartbeat_interval: int, max_retries: int) -> Any:
    """An optuna storage from a URL the workers of every node can reach.

    - ``postgresql://...``, ``mysql://...``, ``sqlite:///...``: an ``RDBStorage``
      with a heartbeat, so the running trials of a dead node are failed (and,
      with ``max_retries``, queued again) by the other nodes;
    - ``redis://...``: a ``JournalStorage`` on optuna's ``JournalRedisBackend``;
    - ``journal:PATH``: a ``JournalStorage`` on a journal file (one node, or a
      shared file system with working locks).

    A journal or SQLite file must exist (the study is made first): a worker never
    creates one.

    :raises ConfigError: an unknown scheme or a storage that cannot be opened.
    """
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend, JournalRedisBackend, JournalStorage

    for prefix in ("journal:", "sqlite:///"):  # a worker joins a study; it never makes a file
        path = url.removeprefix(prefix) if url.startswith(prefix) else None
        if path and path != ":memory:" and not os.path.isfile(path):
            raise ConfigError(
                f"--storage {url!r}: no file at {path}; create the study there first "
                "(optuna.create_study(study_name=..., storage=...))"
            )
    try:
        if url.startswith("journal:"):
            return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
        if url.startswith(("redis://", "rediss://", "unix://")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return JournalStorage(JournalRedisBackend(url))
        if "://" in url:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                callback = RetryHeartbeatStaleTrialCallback(max_retries) if max_retries else None
                return RDBStorage(
                    sqlalchemy_url(url),
                    heartbeat_interval=heartbeat_interval,
                    grace_period=2 * heartbeat_interval,
                    heartbeat_stale_trial_callback=callback,
                )
    except Exception as exc:
        raise ConfigError(f"cannot open storage {url!r}: {one_line(exc)}") from None
    raise ConfigError(
        f"unknown storage URL {url!r}; use postgresql://..., mysql://..., sqlite:///FILE, "
        "redis://HOST:PORT or journal:FILE"
    )


def _import_attribute(path: str, option: str, form: str) -> Any:
    """The attribute named by ``"package.module:name"`` (dotted names allowed), or ``None``.

    :raises ConfigError: a malformed path or a module that does not import.
    """
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"{option} must be {form}, got {path!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as 'python -m' would: modules of the working folder
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"cannot import {option.lstrip('-')} module {module_name!r}: "
                          f"{one_line(exc)}") from None
    value: Any = module
    for part in attribute.split("."):
        value = getattr(value, part, None)
    return value


def load_objective(path: str) -> Callable[..., Any]:
    """Import ``"package.module:function"``.

    :raises ConfigError: a malformed path, a module that does not import, or a
        missing or non-callable attribute.
    """
    value = _import_attribute(path, "--objective", "module:function")
    module_name = path.partition(":")[0]
    if not callable(value):
        raise ConfigError(f"{path!r} is not a callable in module {module_name!r}")
    return value  # type: ignore[no-any-return]


def load_pruner(path: str) -> optuna.pruners.BasePruner:
    """The pruner named by ``"package.module:name"``: a pruner, or a class or function
    that makes one with no arguments (``optuna.pruners:NopPruner``).

    :raises ConfigError: a malformed path, an unimportable module, or no pruner there.
    """
    value = _import_attribute(path, "--pruner", "module:name")
    if callable(value) and not isinstance(value, optuna.pruners.BasePruner):
        try:
            value = value()
        except Exception as exc:
            raise ConfigError(f"--pruner {path!r}: calling it failed: {one_line(exc)}") from None
    if not isinstance(value, optuna.pruners.BasePruner):
        raise ConfigError(
            f"--pruner {path!r} is not an optuna pruner, nor a class or function making one "
            "with no arguments"
        )
    return value


def load_shared_study(storage: Any, study_name: str, sampler: HardwareAwareSampler,
                      pruner: optuna.pruners.BasePruner | None = None) -> Any:
    """The study named ``study_name`` in ``storage``, with ``sampler`` and ``pruner``.

    :raises ConfigError: no such study (the message lists the known names).
    """
    try:
        return optuna.load_study(study_name=study_name, storage=storage, sampler=sampler,
                                 pruner=pruner)
    except KeyError:
        try:
            names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        except Exception:
            names = []
        known = ", ".join(repr(n) for n in names[:10]) or "none"
        raise ConfigError(
            f"no study named {study_name!r} in the storage (studies: {known}); create it "
            "first, e.g. optuna.create_study(study_name=..., storage=...)"
        ) from None


def run_node(
    *,
    storage: str,
    study_name: str,
    objective: str | Callable[..., Any],
    devices: str | os.PathLike[str] | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    node: str | None = None,
    seed: int | None = None,
    max_retries: int = 0,
    trial_timeout: TrialTimeout = None,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_S,
    progress: Callable[[int, Summary], None] | None = None,
    pruner: str | optuna.pruners.BasePruner | None = None,
) -> Summary:
    """Join a shared study with this node's devices until its trial budget is reached.

    Runs trials as :func:`hwaware_optuna.optimize` does (one lease per trial,
    on a :class:`~hwaware_plugins.executors.LocalExecutor` over this node's
    devices: probed, ``$HWAWARE_DEVICES`` or the ``devices`` file), each
    placed by a ``HardwareAwareSampler(seed=seed)`` on its slot. ``n_trials``
    is the study's total (not this node's): this node stops starting trials
    when that many non-retry trials exist in the storage; nodes deciding at the
    same instant may overshoot it by up to one trial each. Each trial records
    this node's name in ``hwaware:node`` (default: the devices' host).

    Blocks; returns what this node did. Ctrl-C/SIGTERM: see ``optimize``.

    :param pruner: the study's pruner in this node's workers (optuna keeps no
        pruner in the storage): a pruner, ``"module:name"`` (see
        :func:`load_pruner`) or ``None`` (optuna's default, ``MedianPruner``).
    :param progress: called after each trial this node ends with the number of
        the study's trials that have ended on any node (retries not counted
        again; one read of the study's trials each time) and this node's
        :class:`Summary`.

    :raises ConfigError: bad URL, unknown study, unimportable objective, bad devices.
    """
    check_count("n_trials", n_trials, low=1)
    check_seconds("timeout", timeout)
    check_trial_timeout(trial_timeout, "trial_timeout")
    check_count("max_retries", max_retries, low=0, allow_none=False)
    check_count("heartbeat_interval", heartbeat_interval, low=1, allow_none=False)
    function = load_objective(objective) if isinstance(objective, str) else objective
    check_picklable(function)
    chosen = load_pruner(pruner) if isinstance(pruner, str) else pruner
    check_components(None, chosen)
    resolved = resolve_devices(devices)
    opened = open_storage(storage, heartbeat_interval=heartbeat_interval,
                          max_retries=max_retries)
    sampler = HardwareAwareSampler(seed=seed)
    study = load_shared_study(opened, study_name, sampler, chosen)
    pool = DevicePool(resolved)
    pool.check()
    name = node or node_name(resolved)
    _log.info("node %s joins study %r with %d devices", name, study_name, len(resolved))

    def trial_ended(summary: Summary) -> None:
        if progress is not None:
            progress(finished_non_retries(study._storage, study._study_id), summary)

    return run_coordinator(
        study, function, pool, node=name,
        budget=StorageBudget(study._storage, study._study_id, n_trials), timeout=timeout,
        max_retries=max_retries, trial_timeout=trial_timeout, on_trial_end=trial_ended,
    )
