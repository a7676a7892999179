"""The optuna adapter's pluggy plugin: the components it registers by name.

Factories import their class on first use, so listing plugins stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hwaware_plugins import Component, hookimpl


def _sampler(*args: Any, **kwargs: Any) -> Any:
    from hwaware_optuna._sampler import HardwareAwareSampler

    return HardwareAwareSampler(*args, **kwargs)


def _subspace_pruner(*args: Any, **kwargs: Any) -> Any:
    from hwaware_optuna._subspace_pruner import SubspacePruner

    return SubspacePruner(*args, **kwargs)


def _cost_aware_pruner(**kwargs: Any) -> Any:
    from hwaware_optuna._cost_pruner import CostAwarePruner

    return CostAwarePruner(**kwargs)


def _tpe_scheduler(seed: int | None = None, **kwargs: Any) -> Any:
    from hwaware_optuna._tpe_scheduler import TpeScheduler

    return TpeScheduler(seed, **kwargs)


@hookimpl
def hwaware_register_components() -> Sequence[Component]:
    """The optuna sampler, pruners and baseline scheduler.

    ``sampler/hwaware``, ``pruner/subspace``, ``pruner/cost`` and
    ``scheduler/tpe`` (Optuna's TPE picks the subspace, any free device runs it).
    """
    return [
        Component(
            "sampler",
            "hwaware",
            _sampler,
            framework="optuna",
            description="device leases per trial; the scheduler picks the subspace",
        ),
        Component(
            "pruner",
            "subspace",
            _subspace_pruner,
            framework="optuna",
            description="wraps a pruner to compare trials within their subspace",
        ),
        Component(
            "pruner",
            "cost",
            _cost_aware_pruner,
            framework="optuna",
            description="stops trials projected to cost far more device time than peers",
        ),
        Component(
            "scheduler",
            "tpe",
            _tpe_scheduler,
            description="baseline: Optuna's TPESampler picks the subspace, first free device",
        ),
    ]
