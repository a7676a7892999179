"""The optuna adapter's pluggy plugin: its components, CLI commands and demo study.

- components: ``sampler/hwaware``, ``pruner/subspace``, ``pruner/cost`` and the
  chaos drivers ``chaos-driver/optimize`` and ``chaos-driver/executor``;
- ``hwaware worker`` and ``hwaware report`` (``hwaware_add_commands``);
- the study of ``hwaware demo`` (``hwaware_demo_study``).

Factories and command handlers import optuna on first use, so listing plugins
and commands stays cheap and works without optuna installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hwaware_plugins import Component, hookimpl
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hookspecs import CHAOS_DRIVER_KIND, DemoStudy


def _sampler(*args: Any, **kwargs: Any) -> Any:
    from hwaware_optuna._sampler import HardwareAwareSampler

    return HardwareAwareSampler(*args, **kwargs)


def _subspace_pruner(*args: Any, **kwargs: Any) -> Any:
    from hwaware_optuna._subspace_pruner import SubspacePruner

    return SubspacePruner(*args, **kwargs)


def _cost_aware_pruner(**kwargs: Any) -> Any:
    from hwaware_optuna._cost_pruner import CostAwarePruner

    return CostAwarePruner(**kwargs)


def _require_optuna(flag: str) -> None:
    try:
        import optuna  # noqa: F401
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{flag} needs {exc.name}: pip install hwaware-optuna") from None


def _chaos_optimize(context: Any) -> Any:
    _require_optuna("--framework optuna")
    from hwaware_optuna._chaos import run_optuna_optimize

    return run_optuna_optimize(context)


def _chaos_executor(context: Any) -> Any:
    _require_optuna("--framework optuna")
    from hwaware_optuna._chaos import run_optuna

    return run_optuna(context)


def _tpe_scheduler(seed: int | None = None, **kwargs: Any) -> Any:
    from hwaware_optuna._tpe_scheduler import TpeScheduler

    return TpeScheduler(seed, **kwargs)


@hookimpl
def hwaware_register_components() -> Sequence[Component]:
    """The optuna sampler, pruners, chaos drivers and the ``tpe`` baseline scheduler
    (Optuna's TPE picks the subspace, any free device runs it)."""
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
            CHAOS_DRIVER_KIND,
            "optimize",
            _chaos_optimize,
            framework="optuna",
            description="hwaware bench chaos through hwaware_optuna.optimize",
        ),
        Component(
            CHAOS_DRIVER_KIND,
            "executor",
            _chaos_executor,
            framework="optuna",
            description="hwaware bench chaos through ask/tell on a LocalExecutor",
        ),
        Component(
            "scheduler",
            "tpe",
            _tpe_scheduler,
            description="baseline: Optuna's TPESampler picks the subspace, first free device",
        ),
    ]


@hookimpl
def hwaware_add_commands(subparsers: Any) -> None:
    """Add ``hwaware worker`` and ``hwaware report`` (no optuna import until they run)."""
    from hwaware_optuna import _cli_report, _cli_worker

    _cli_worker.add_parser(subparsers)
    _cli_report.add_parser(subparsers)


@hookimpl
def hwaware_demo_study(out: Path, trials: int, quiet: bool) -> DemoStudy:
    """Run the digits CASH study of ``hwaware demo`` with ``HardwareAwareSampler``."""
    from hwaware_optuna._cli_demo import demo_study

    return demo_study(out, trials, quiet=quiet)
