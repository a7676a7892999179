"""Subspaces of a hyperopt space, and which subspace a trial document belongs to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hwaware_hyperopt._pyll import SpaceInfo, SwitchInfo, read_space
from hwaware_plugins.space import Subspace, enumerate_subspaces


@dataclass(frozen=True)
class Branching:
    """The subspaces of a space and the switch indices that select each.

    :param info: the space as read by :func:`~hwaware_hyperopt._pyll.read_space`.
    :param subspaces: the subspaces (SHADHO's splitting rule, capped).
    :param indices: per subspace key, ``{switch label: option index}``.
    """

    info: SpaceInfo
    subspaces: tuple[Subspace, ...]
    indices: Mapping[str, Mapping[str, int]]

    @property
    def keys(self) -> list[str]:
        """The subspace keys, in tree order."""
        return [s.key for s in self.subspaces]

    def subspace_of(self, vals: Mapping[str, Sequence[Any]]) -> str | None:
        """The key of the subspace a trial's ``misc["vals"]`` fall in, or ``None``.

        Values may be numpy scalars. A trial matches the subspace whose every
        branch decision it took; ``None`` when none matches (e.g. a trial of
        another space). Cost: O(subspaces x depth).
        """
        if len(self.subspaces) == 1:
            return self.subspaces[0].key
        taken: dict[str, str] = {}
        for label, switch in self.info.switches.items():
            values = vals.get(label)
            if values is not None and len(values) > 0:
                option = switch.option_of(values[0])
                if option is not None:
                    taken[label] = option
        for subspace in self.subspaces:
            if all(taken.get(name) == option for name, option in subspace.branches.items()):
                return subspace.key
        return None


def _indices(subspace: Subspace, switches: Mapping[str, SwitchInfo]) -> dict[str, int]:
    return {
        name: switches[name].option_labels.index(option)
        for name, option in subspace.branches.items()
    }


def branching(space: object, *, max_subspaces: int = 512) -> Branching:
    """Read ``space`` and enumerate its subspaces (capped at ``max_subspaces``).

    Past the cap the core splits on the top-level branches only (see
    :func:`hwaware_plugins.space.enumerate_subspaces`). Cost: O(subspaces x
    parameters) after an O(nodes) walk of the graph.
    """
    info = read_space(space)
    subspaces = tuple(enumerate_subspaces(info.tree, max_subspaces=max_subspaces))
    indices = {s.key: _indices(s, info.switches) for s in subspaces}
    return Branching(info, subspaces, indices)
