"""Subspaces: the root-to-leaf combinations of a tree's branch decisions.

SHADHO's splitting rule: a :class:`~hwaware_plugins.space.Group` takes the
Cartesian product of its children's subspaces, a
:class:`~hwaware_plugins.space.Choice` the union of its options' subspaces and
an :class:`~hwaware_plugins.space.Optional` adds the empty alternative.
The functions here are pure and thread-safe.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hwaware_plugins.errors import ConfigError, SearchSpaceError
from hwaware_plugins.space._tree import (
    OPTIONAL_LABELS,
    Choice,
    Group,
    Node,
    Param,
    flatten,
    validate_space,
)

_log = logging.getLogger(__name__)

ROOT_KEY = "all"
"""The key of the single subspace of a tree that has no branch decisions."""

# A partial subspace: (branch decisions, parameters), both as ordered pairs.
_Partial = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, object], ...]]


@dataclass(frozen=True)
class Subspace:
    """One combination of branch decisions and the parameters it leaves free.

    :param key: stable, readable identifier: the decisions in tree order,
        ``"model=svm/kernel=rbf"`` (``"all"`` when there are none).
    :param branches: ``{choice name: label taken}``, in tree order.
    :param params: ``{parameter name: distribution}`` of the free parameters;
        branch decisions are not repeated here.

    Treat both mappings as read-only (they are plain dicts so that a subspace
    pickles, e.g. to a Dask worker).
    """

    key: str
    branches: Mapping[str, str]
    params: Mapping[str, object]


def count_subspaces(space: Node) -> int:
    """How many subspaces :func:`enumerate_subspaces` would return uncapped.

    Cost: O(nodes), without enumerating (product over groups, sum over choices,
    +1 for optional nodes), so it is safe on spaces with billions of subspaces.
    Raises :class:`SearchSpaceError` for an invalid tree.
    """
    validate_space(space)
    return _count(space)


def _count(node: Node) -> int:
    if isinstance(node, Param):
        return 1
    if isinstance(node, Group):
        return math.prod(_count(child) for child in node.children)
    if isinstance(node, Choice):
        return sum(1 if option is None else _count(option) for option in node.options.values())
    return _count(node.node) + 1


def enumerate_subspaces(space: Node, *, max_subspaces: int = 512) -> list[Subspace]:
    """List every subspace of ``space``, in tree order.

    When there are more than ``max_subspaces``, logs a warning and splits only
    on the top-level branches (choices and optional nodes not nested in another
    one): one subspace per top-level combination, the nested choices kept as
    ``Categorical`` parameters. Should even that exceed the cap, the result is
    one subspace holding every parameter.

    Cost: O(subspaces x parameters) time and memory, after an O(nodes) count.
    Raises :class:`SearchSpaceError` for an invalid tree (empty choice,
    ``low > high``, a name twice in one subspace).
    """
    if isinstance(max_subspaces, bool) or not isinstance(max_subspaces, int) or max_subspaces < 1:
        raise ConfigError(f"max_subspaces must be an integer >= 1, got {max_subspaces!r}")
    total = count_subspaces(space)
    if total <= max_subspaces:
        return _finish(_partials(space, nested=True))
    top = _count_top(space)
    if top <= max_subspaces:
        _log.warning(
            "the search space has %d subspaces, more than max_subspaces=%d; "
            "splitting on its %d top-level branches only",
            total,
            max_subspaces,
            top,
        )
        return _finish(_partials(space, nested=False))
    _log.warning(
        "the search space has %d subspaces and %d top-level branches, more than "
        "max_subspaces=%d; using a single subspace",
        total,
        top,
        max_subspaces,
    )
    return [_subspace((), tuple(flatten(space).items()))]


def _count_top(node: Node) -> int:
    if isinstance(node, Param):
        return 1
    if isinstance(node, Group):
        return math.prod(_count_top(child) for child in node.children)
    if isinstance(node, Choice):
        return len(node.options)
    return 2


def _partials(node: Node, *, nested: bool) -> list[_Partial]:
    """The subspaces of ``node``; with ``nested=False`` options are flattened, not split."""
    if isinstance(node, Param):
        return [((), ((node.name, node.distribution),))]
    if isinstance(node, Group):
        result: list[_Partial] = [((), ())]
        for child in node.children:
            result = [
                (b1 + b2, p1 + p2)
                for b1, p1 in result
                for b2, p2 in _partials(child, nested=nested)
            ]
        return result
    if isinstance(node, Choice):
        labelled = [(str(label), option) for label, option in node.options.items()]
        return _branch(node.name, labelled, nested=nested)
    on, off = OPTIONAL_LABELS
    return _branch(node.name, [(on, node.node), (off, None)], nested=nested)


def _branch(
    name: str, options: Iterable[tuple[str, Node | None]], *, nested: bool
) -> list[_Partial]:
    result: list[_Partial] = []
    for label, option in options:
        decision = ((name, label),)
        if option is None:
            result.append((decision, ()))
        elif nested:
            result.extend((decision + b, p) for b, p in _partials(option, nested=True))
        else:
            result.append((decision, tuple(flatten(option).items())))
    return result


def _subspace(
    branches: tuple[tuple[str, str], ...], params: tuple[tuple[str, object], ...]
) -> Subspace:
    key = "/".join(f"{name}={label}" for name, label in branches) or ROOT_KEY
    return Subspace(key, dict(branches), dict(params))


def _finish(partials: list[_Partial]) -> list[Subspace]:
    subspaces = [_subspace(b, p) for b, p in partials]
    seen: set[str] = set()
    for subspace in subspaces:
        if subspace.key in seen:
            raise SearchSpaceError(
                f"two subspaces share the key {subspace.key!r}; "
                "avoid '/' and '=' in choice names and labels"
            )
        seen.add(subspace.key)
    return subspaces
