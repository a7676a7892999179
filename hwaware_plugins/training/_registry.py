"""The components the training area registers by name (listed by ``hwaware plugins``).

Factories import lazily: listing plugins never imports torch.
"""

from __future__ import annotations

from typing import Any

from hwaware_plugins._components import Component


def _adaptive(**options: Any) -> Any:
    from hwaware_plugins.training._policies import AdaptivePolicy

    return AdaptivePolicy(**options)


def _sync(**options: Any) -> Any:
    from hwaware_plugins.training._policies import SyncPolicy

    return SyncPolicy(**options)


def _ds_sync(**options: Any) -> Any:
    from hwaware_plugins.training._policies import DSSyncPolicy

    return DSSyncPolicy(**options)


def _adasync(**options: Any) -> Any:
    from hwaware_plugins.training._policies import AdaSyncPolicy

    return AdaSyncPolicy(**options)


COMPONENTS: list[Component] = [
    Component(
        "policy", "adaptive", _adaptive,
        description="adaptive SGD: dynamic dispatch, weighted merges, batch-size control",
    ),
    Component("policy", "sync", _sync, description="synchronous data-parallel SGD (baseline)"),
    Component(
        "policy", "ds-sync", _ds_sync,
        description="DS-Sync: group averaging with membership reshuffled every step",
    ),
    Component(
        "policy", "adasync", _adasync,
        description="AdaSync: K-sync SGD with K growing as the loss falls",
    ),
]
