"""The component record plugins register through ``hwaware_register_components``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

COMPONENT_KINDS = frozenset(
    {"sampler", "pruner", "executor", "scheduler", "algo", "trials", "complexity", "policy"}
)
"""The component kinds the core knows; plugins may use others, these are only documented."""


@dataclass(frozen=True)
class Component:
    """A named, buildable piece a plugin provides.

    :param kind: what it is: ``"sampler"``, ``"pruner"``, ``"executor"``,
        ``"scheduler"``, ``"algo"``, ...
    :param name: the name users pass to :func:`hwaware_plugins.load`.
    :param factory: a callable returning the component (usually its class).
    :param framework: ``"optuna"``, ``"hyperopt"`` or ``None`` when framework-neutral.
    :param description: one line shown by ``hwaware plugins``.
    :param provider: filled in by the registry: the distribution that registered it.
    """

    kind: str
    name: str
    factory: Callable[..., Any] = field(repr=False)
    framework: str | None = None
    description: str = ""
    provider: str = ""

    @property
    def key(self) -> tuple[str, str, str | None]:
        """The identity of a component: ``(kind, name, framework)``."""
        return (self.kind, self.name, self.framework)
