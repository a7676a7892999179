"""The schedulers the core registers by name (filled in by the scheduling module)."""

from __future__ import annotations

from hwaware_plugins._components import Component

COMPONENTS: list[Component] = []
