"""The components the training area registers by name (listed by ``hwaware plugins``)."""

from __future__ import annotations

from hwaware_plugins._components import Component

COMPONENTS: list[Component] = []
