"""The schedulers the core registers by name (kind ``"scheduler"``, framework-neutral).

Factories import their class on first use so that listing plugins stays cheap.
"""

from __future__ import annotations

from typing import Any

from hwaware_plugins._components import Component


def _random(seed: int | None = None, **options: Any) -> Any:
    from hwaware_plugins.scheduling._fcfs import RandomScheduler

    return RandomScheduler(seed, **options)


def _oracle(seed: int | None = None, **options: Any) -> Any:
    from hwaware_plugins.scheduling._oracle import OracleScheduler

    return OracleScheduler(seed, **options)


def _shadho(seed: int | None = None, **options: Any) -> Any:
    from hwaware_plugins.scheduling._shadho import ShadhoScheduler

    return ShadhoScheduler(seed, **options)


def _hwaware(seed: int | None = None, **options: Any) -> Any:
    from hwaware_plugins.scheduling._hwaware import HwawareScheduler

    return HwawareScheduler(seed, **options)


COMPONENTS: list[Component] = [
    Component(
        "scheduler",
        "random",
        _random,
        description="baseline: uniform subspace for any free device",
    ),
    Component(
        "scheduler",
        "fcfs",
        _random,
        description="old name of random (first come, first served)",
    ),
    Component(
        "scheduler",
        "oracle",
        _oracle,
        description="the limit: knows the table and hidden speeds (simulation only)",
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
        description="learned runtimes, top-results hit rate per second by Thompson draws, floor",
    ),
]
