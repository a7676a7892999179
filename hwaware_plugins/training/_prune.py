"""Pruning hook-up: any trial-like object with ``report(value, step)`` and ``should_prune()``.

The core never imports optuna; the exception raised on pruning is taken from
the trial's own package when it defines one (``optuna.TrialPruned``), so the
framework recognises it, else :class:`PrunedError`.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol, runtime_checkable

from hwaware_plugins.errors import HwawareError


class PrunedError(HwawareError):
    """Training stopped because the trial's pruner asked for it."""


@runtime_checkable
class TrialLike(Protocol):
    """What the training callback needs from a trial (``optuna.Trial`` fits)."""

    def report(self, value: float, step: int) -> None:
        """Record an intermediate value at a step."""

    def should_prune(self) -> bool:
        """Whether the pruner wants this trial stopped."""


def pruned_exception_for(trial: object) -> type[BaseException]:
    """Return the pruning exception class of ``trial``'s framework, or :class:`PrunedError`.

    Looks for ``TrialPruned`` in the trial's module and each parent package
    (``optuna.trial._trial``, ``optuna.trial``, ``optuna``). Cost: a few dict
    look-ups; nothing is imported.
    """
    parts = type(trial).__module__.split(".")
    for depth in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:depth]))
        found: Any = getattr(module, "TrialPruned", None)
        if isinstance(found, type) and issubclass(found, BaseException):
            return found
    return PrunedError


def check_trial(trial: object) -> None:
    """Raise a one-line :class:`~hwaware_plugins.errors.ConfigError` unless ``trial`` fits."""
    from hwaware_plugins.errors import ConfigError

    if not isinstance(trial, TrialLike):
        raise ConfigError(
            f"trial {trial!r} needs report(value, step) and should_prune() methods; "
            "pass an optuna.Trial or an object with both"
        )
