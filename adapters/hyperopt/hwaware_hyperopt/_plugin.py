"""The hyperopt adapter's pluggy plugin: the components it registers by name.

``trials/hwaware``, ``algo/hwaware`` and the chaos driver ``chaos-driver/fmin``
(what ``hwaware bench chaos --framework hyperopt`` runs).

Factories import lazily so that listing plugins does not import hyperopt.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from hwaware_plugins import Component, hookimpl
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hookspecs import CHAOS_DRIVER_KIND


def _trials(**options: Any) -> Any:
    from hwaware_hyperopt._trials import HardwareAwareTrials

    return HardwareAwareTrials(**options)


def _algo(**options: Any) -> Any:
    from hwaware_hyperopt._suggest import suggest

    return functools.partial(suggest, **options) if options else suggest


def _chaos_fmin(context: Any) -> Any:
    try:
        import hyperopt  # noqa: F401
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"--framework hyperopt needs {exc.name}: pip install hwaware-hyperopt"
        ) from None
    from hwaware_hyperopt._chaos import run_hyperopt

    return run_hyperopt(context)


@hookimpl
def hwaware_register_components() -> Sequence[Component]:
    """The hyperopt adapter's ``trials/hwaware``, ``algo/hwaware`` and chaos driver."""
    return [
        Component(
            kind="trials", name="hwaware", factory=_trials, framework="hyperopt",
            description="parallel Trials: each evaluation in a process pinned to a device slot",
        ),
        Component(
            kind="algo", name="hwaware", factory=_algo, framework="hyperopt",
            description="branch of hp.choice by complexity and scheduler, then TPE inside it",
        ),
        Component(
            kind=CHAOS_DRIVER_KIND, name="fmin", factory=_chaos_fmin, framework="hyperopt",
            description="hwaware bench chaos through fmin with HardwareAwareTrials",
        ),
    ]
