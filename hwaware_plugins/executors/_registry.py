"""The executors the core registers by name."""

from __future__ import annotations

from hwaware_plugins._components import Component

COMPONENTS: list[Component] = []
