"""Lazy exports for package ``__init__`` modules.

The adapters' packages are imported whenever the plugin registry loads their
entry points; importing optuna or hyperopt there would cost every process
seconds. A package lists where each public name lives and imports it on first
access instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, where: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package``.

    :param package: the package's ``__name__``.
    :param where: public name -> private submodule (relative, e.g. ``"_local"``).
    :param namespace: the package's ``globals()``; an imported name is cached there,
        so each name costs one import on first access and nothing afterwards.
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
