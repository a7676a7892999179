"""Training across heterogeneous devices: adaptive SGD and its synchronous baselines.

torch is optional for the core: this package imports it only when a training
object is used; without it, that use raises ``TorchMissingError`` naming
``pip install "hwaware-plugins[torch]"``.

Public names:

- :class:`AdaptiveSGD`: the callback a hand-written PyTorch loop drives;
- :func:`fit`: the plain case in one call; :func:`launch`: one rank per device;
- policies :class:`AdaptivePolicy`, :class:`SyncPolicy`, :class:`DSSyncPolicy`,
  :class:`AdaSyncPolicy` (also registered as components of kind ``"policy"``);
- :class:`CostModel` and :func:`plan_round` (virtual clock), :func:`merge_weights`
  and :func:`adjust_batch_sizes` (the pure control rules);
- :class:`PrunedError`, raised when a trial without its own pruning exception is pruned.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "AdaptiveSGD": "_callback",
    "Round": "_callback",
    "RoundRecord": "_callback",
    "fit": "_fit",
    "FitResult": "_fit",
    "accuracy": "_fit",
    "launch": "_launch",
    "RankContext": "_launch",
    "current_context": "_launch",
    "AdaptivePolicy": "_policies",
    "SyncPolicy": "_policies",
    "DSSyncPolicy": "_policies",
    "AdaSyncPolicy": "_policies",
    "POLICIES": "_policies",
    "CostModel": "_dispatch",
    "RoundPlan": "_dispatch",
    "plan_round": "_dispatch",
    "merge_weights": "_control",
    "adjust_batch_sizes": "_control",
    "adasync_k": "_control",
    "PrunedError": "_prune",
    "TorchMissingError": "_torch",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
