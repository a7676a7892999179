"""The components the space area registers by name (listed by ``hwaware plugins``)."""

from __future__ import annotations

from typing import Any

from hwaware_plugins._components import Component


def _hwaware(**options: Any) -> Any:
    from hwaware_plugins.space._complexity import HwawareComplexity

    return HwawareComplexity(**options)


def _shadho(**options: Any) -> Any:
    from hwaware_plugins.space._complexity import ShadhoComplexity

    return ShadhoComplexity(**options)


COMPONENTS: list[Component] = [
    Component(
        "complexity",
        "hwaware",
        _hwaware,
        None,
        "scale-invariant log-volume of a subspace (default)",
    ),
    Component(
        "complexity",
        "shadho",
        _shadho,
        None,
        "SHADHO's reference rule: 2 + |b - a| per continuous domain, product over a subspace",
    ),
]
