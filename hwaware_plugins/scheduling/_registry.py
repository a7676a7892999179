"""The schedulers the core registers by name (kind ``"scheduler"``, framework-neutral).

Factories import their class on first use so that listing plugins stays cheap.
"""

from __future__ import annotations

from typing import Any

from hwaware_plugins._components import Component


def _fcfs(seed: int | None = None, **options: Any) -> Any:
    from hwaware_plugins.scheduling._fcfs import FcfsScheduler

    return FcfsScheduler(seed, **options)


def _shadho(seed: int | None = None, **options: Any) -> Any:
    from hwaware_plugins.scheduling._shadho import ShadhoScheduler

    return ShadhoScheduler(seed, **options)


def _hwaware(seed: int | None = None, **options: Any) -> Any:
    from hwaware_plugins.scheduling._hwaware import HwawareScheduler

    return HwawareScheduler(seed, **options)


COMPONENTS: list[Component] = [
    Component(
        "scheduler",
        "fcfs",
        _fcfs,
        description="first come, first served: uniform subspace for any free device",
    ),
    Component(
        "scheduler",
        "shadho",
        _shadho,
        description="SHADHO: complexity x fitted-GP priority, banded onto speed-ordered classes",
    ),
    Component(
        "scheduler",
        "hwaware",
        _hwaware,
        description="learned runtimes, comparative-advantage placement, promise, no starvation",
    ),
]
