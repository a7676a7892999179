"""The bridge from enumerated subspaces to what a scheduler is given."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from hwaware_plugins.space._complexity import ComplexityRule, get_rule
from hwaware_plugins.space._subspaces import Subspace

if TYPE_CHECKING:
    from hwaware_plugins.scheduling._base import SubspaceInfo

FamilyOf = Callable[[Subspace], "str | None"] | Mapping[str, str]
"""How to name a subspace's workload family: a function, or ``{key: family}``."""


def subspace_infos(
    subspaces: Iterable[Subspace],
    *,
    rule: str | ComplexityRule = "hwaware",
    family_of: FamilyOf | None = None,
) -> list[SubspaceInfo]:
    """Describe subspaces for a scheduler: key, complexity under ``rule``, family.

    :param rule: a complexity rule name (``"hwaware"``, ``"shadho"``, or a
        registered ``complexity`` component) or a rule object.
    :param family_of: maps a subspace to its workload family (matching the
        ``[device.speedup]`` keys); a mapping is looked up by subspace key,
        missing keys give ``None``. ``None``: no families.

    Cost: O(total number of parameters). Raises
    :class:`~hwaware_plugins.errors.SearchSpaceError` for a distribution no
    rule or plugin knows.
    """
    # Imported here: the scheduling package may itself import this one.
    from hwaware_plugins.scheduling._base import SubspaceInfo

    complexity = get_rule(rule)
    infos: list[SubspaceInfo] = []
    for subspace in subspaces:
        if family_of is None:
            family = None
        elif isinstance(family_of, Mapping):
            family = family_of.get(subspace.key)
        else:
            family = family_of(subspace)
        infos.append(SubspaceInfo(subspace.key, complexity(subspace.params), family))
    return infos
