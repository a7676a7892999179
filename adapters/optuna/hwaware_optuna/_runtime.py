"""What a :class:`HardwareAwareSampler` builds on first use: devices, pool, scheduler, tracker.

Kept apart from the sampler so its constructor only stores arguments
(scikit-learn style) and every validation error surfaces, once, at the first
trial.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import hwaware_plugins
from hwaware_optuna._convert import to_core_space
from hwaware_optuna._tracker import SubspaceTracker
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware import Device
from hwaware_plugins.hardware._inventory import device_classes, resolve_devices
from hwaware_plugins.hardware._pool import DevicePool
from hwaware_plugins.scheduling._base import DeviceClassInfo, Scheduler, SubspaceInfo
from hwaware_plugins.space import subspace_complexity

FamilyOf = Callable[[Mapping[str, Any]], str | None]


@dataclass
class SamplerRuntime:
    """The sampler's working parts (not thread-safe: the sampler's lock guards them)."""

    devices: list[Device]
    classes: list[DeviceClassInfo]
    pool: DevicePool
    scheduler: Scheduler
    scheduler_name: str
    tracker: SubspaceTracker
    set_up_version: int = -1
    study: tuple[int, int] | None = None

    def check_study(self, storage: object, study_id: int) -> None:
        """Bind to the first study seen; refuse another one (its trials would mix).

        :raises ConfigError: the sampler is used by a second study.
        """
        key = (id(storage), study_id)
        if self.study is None:
            self.study = key
        elif self.study != key:
            raise ConfigError(
                "a HardwareAwareSampler serves one study; create one sampler per study"
            )


def check_branch_params(branch_params: object) -> tuple[str, ...]:
    """The declared branching parameter names, validated.

    :raises ConfigError: not ``None`` nor a collection of strings.
    """
    if branch_params is None:
        return ()
    if isinstance(branch_params, str | bytes) or not isinstance(
        branch_params, Sequence | set | frozenset
    ):
        raise ConfigError(
            f"branch_params must be a list of parameter names, got {branch_params!r}"
        )
    names = tuple(branch_params)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"branch_params must hold parameter names, got {name!r}")
    return names


def check_lease_timeout(lease_timeout: object) -> float | None:
    """``None`` or a number of seconds >= 0.

    :raises ConfigError: anything else.
    """
    if lease_timeout is None:
        return None
    if isinstance(lease_timeout, bool) or not isinstance(lease_timeout, int | float):
        raise ConfigError(f"lease_timeout must be None or seconds >= 0, got {lease_timeout!r}")
    if not lease_timeout >= 0:
        raise ConfigError(f"lease_timeout must be None or seconds >= 0, got {lease_timeout!r}")
    return float(lease_timeout)


def load_scheduler(scheduler: object, seed: int | None) -> tuple[Scheduler, str]:
    """A scheduler object and its name, from a registered name or an object.

    :raises ConfigError: an object without ``setup`` and ``choose``.
    :raises UnknownComponentError: an unknown name (the message lists the known ones).
    """
    if isinstance(scheduler, str):
        built = hwaware_plugins.load("scheduler", scheduler, framework="optuna", seed=seed)
        return built, scheduler
    if not (callable(getattr(scheduler, "setup", None)) and callable(
        getattr(scheduler, "choose", None)
    )):
        raise ConfigError(
            f"scheduler must be a registered scheduler name or an object with setup() and "
            f"choose(), got {scheduler!r}"
        )
    return scheduler, str(getattr(scheduler, "name", type(scheduler).__name__))  # type: ignore[return-value]


def check_seed(seed: object) -> None:
    """``None`` or an integer (what Optuna's samplers and numpy accept).

    :raises ConfigError: anything else, e.g. the string ``"0"`` or ``1.5``.
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ConfigError(f"seed must be None or an integer, got {seed!r}")


def check_settings(
    *, scheduler: object, seed: object, branch_params: object, skip_foreign_processes: object,
    complexity_rule: str,
) -> tuple[tuple[str, ...], Scheduler, str]:
    """Validate the sampler's arguments that do not need its devices; returns the declared
    branch parameters and the loaded scheduler with its name.

    Cost: loading the scheduler (microseconds for the built-in ones).

    :raises ConfigError: the first invalid argument (``UnknownComponentError`` for an
        unknown scheduler or complexity rule).
    """
    check_seed(seed)
    if not isinstance(skip_foreign_processes, bool):
        raise ConfigError(
            f"skip_foreign_processes must be True or False, got {skip_foreign_processes!r}"
        )
    declared = check_branch_params(branch_params)
    subspace_complexity({}, rule=complexity_rule)
    loaded, name = load_scheduler(scheduler, seed)  # type: ignore[arg-type]
    return declared, loaded, name


def build_runtime(
    *,
    devices: str | os.PathLike[str] | Sequence[Device] | None,
    scheduler: object,
    seed: int | None,
    branch_params: object,
    packing: str,
    skip_foreign_processes: bool,
    pool_name: str,
    state_dir: str | os.PathLike[str] | None,
    complexity_rule: str,
) -> SamplerRuntime:
    """Resolve devices, build the pool, load the scheduler; validates every argument
    (an unknown ``complexity_rule`` too, before any trial rather than at the first branch).

    Cost: a device probe when ``devices`` is ``None`` (milliseconds to a second).
    """
    resolved = resolve_devices(devices)
    declared, loaded, name = check_settings(
        scheduler=scheduler, seed=seed, branch_params=branch_params,
        skip_foreign_processes=skip_foreign_processes, complexity_rule=complexity_rule,
    )
    pool = DevicePool(
        resolved,
        name=pool_name,
        packing=packing,
        skip_foreign_processes=skip_foreign_processes,
        state_dir=state_dir,
    )
    pool.check()
    return SamplerRuntime(
        devices=resolved,
        classes=device_classes(resolved),
        pool=pool,
        scheduler=loaded,
        scheduler_name=name,
        tracker=SubspaceTracker(declared=declared),
    )


def set_up_scheduler(
    runtime: SamplerRuntime, *, complexity_rule: str, family_of: FamilyOf | None
) -> None:
    """Give the scheduler the current subspaces if they changed since the last call.

    Cost: one complexity evaluation per subspace when they changed, else O(1).
    A stub (a branch value no trial completed yet) gets the largest known complexity.
    """
    tracker = runtime.tracker
    if runtime.set_up_version == tracker.version or not tracker.subspaces:
        return
    complexity = {
        key: subspace_complexity(to_core_space(subspace.params), rule=complexity_rule)
        for key, subspace in tracker.subspaces.items()
        if subspace.n_complete
    }
    # A stub's parameters are unknown until a trial takes it: assume it is as large as the
    # largest known subspace, so an unexplored branch is not ranked as the smallest.
    unknown = max(complexity.values(), default=subspace_complexity({}, rule=complexity_rule))
    infos = [
        SubspaceInfo(
            key=key,
            complexity=complexity.get(key, unknown),
            family=family_of(dict(subspace.branch)) if family_of is not None else None,
        )
        for key, subspace in tracker.subspaces.items()
    ]
    runtime.scheduler.setup(infos, runtime.classes)
    runtime.set_up_version = tracker.version
