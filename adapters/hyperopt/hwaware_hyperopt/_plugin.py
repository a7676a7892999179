"""The hyperopt adapter's pluggy plugin: the components it registers by name.

Factories import lazily so that listing plugins does not import hyperopt.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from hwaware_plugins import Component, hookimpl


def _trials(**options: Any) -> Any:
    from hwaware_hyperopt._trials import HardwareAwareTrials

    return HardwareAwareTrials(**options)


def _algo(**options: Any) -> Any:
    from hwaware_hyperopt._suggest import suggest

    return functools.partial(suggest, **options) if options else suggest


@hookimpl
def hwaware_register_components() -> Sequence[Component]:
    """Components of the hyperopt adapter: ``trials/hwaware`` and ``algo/hwaware``."""
    return [
        Component(
            kind="trials", name="hwaware", factory=_trials, framework="hyperopt",
            description="parallel Trials: each evaluation in a process pinned to a device slot",
        ),
        Component(
            kind="algo", name="hwaware", factory=_algo, framework="hyperopt",
            description="branch of hp.choice by complexity and scheduler, then TPE inside it",
        ),
    ]
