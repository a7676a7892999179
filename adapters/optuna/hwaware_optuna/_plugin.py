"""The optuna adapter's pluggy plugin: the components it registers by name."""

from __future__ import annotations

from collections.abc import Sequence

from hwaware_plugins import Component, hookimpl


@hookimpl
def hwaware_register_components() -> Sequence[Component]:
    """Components of the optuna adapter (each added by the issue that builds it)."""
    return []
