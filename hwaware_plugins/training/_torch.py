"""The one place that imports torch for the training package, with a clear error."""

from __future__ import annotations

from types import ModuleType

from hwaware_plugins.errors import HwawareError

INSTALL_HINT = 'pip install "hwaware-plugins[torch]"'


class TorchMissingError(HwawareError, ImportError):
    """torch is not installed; the training callback needs it."""


def require_torch() -> ModuleType:
    """Import and return ``torch``, or raise :class:`TorchMissingError` saying how to get it."""
    try:
        import torch
    except ImportError as exc:
        raise TorchMissingError(
            f"the training callback needs PyTorch, which is not installed; run: {INSTALL_HINT}"
        ) from exc
    return torch
