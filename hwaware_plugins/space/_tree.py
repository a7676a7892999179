"""The framework-neutral search-space tree.

Four node kinds describe a conditional space, following SHADHO's splitting rule:

- :class:`Param`: one named parameter and its distribution;
- :class:`Group`: all of its children at once (a Cartesian product of their subspaces);
- :class:`Choice`: exactly one of its labelled options (a union; the label is
  part of the subspace);
- :class:`Optional`: its child, or nothing (adds the empty alternative).

Nodes store their arguments as given; :func:`validate_space` (called by the
enumeration functions) checks them. Nodes are immutable and safe to share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from hwaware_plugins.errors import SearchSpaceError
from hwaware_plugins.space._distributions import Categorical, Constant

OPTIONAL_LABELS = ("on", "off")
"""The branch labels an :class:`Optional` node records: child present, child absent."""


@dataclass(frozen=True, eq=True)
class Param:
    """A leaf: the parameter ``name`` drawn from ``distribution``."""

    name: str
    distribution: object


@dataclass(frozen=True, eq=True)
class Group:
    """All ``children`` together: the Cartesian product of their subspaces.

    :param children: the member nodes, in order (their order fixes the key order).
    :param name: an optional label for messages; it is not part of any key.
    """

    children: Sequence[Node]
    name: str | None = None


@dataclass(frozen=True, eq=True)
class Choice:
    """Exactly one of ``options``: the union of the options' subspaces.

    :param name: the branching parameter (e.g. ``"kernel"``); each subspace
        records which label it took.
    :param options: ``{label: node}``; ``None`` stands for an empty option.
    """

    name: str
    options: Mapping[str, Node | None]


@dataclass(frozen=True, eq=True)
class Optional:
    """``node`` or nothing: adds the empty alternative, recorded as ``name=off``."""

    name: str
    node: Node


Node: TypeAlias = Param | Group | Choice | Optional
"""Any search-space node."""


def _node_or_empty(node: Node | None) -> Node:
    return Group(()) if node is None else node


def from_dict(spec: Mapping[str, Any], *, name: str | None = None) -> Group:
    """Build a tree from nested Python dicts; O(size of ``spec``).

    Each entry ``key: value`` of a dict becomes one child of a :class:`Group`:

    - a distribution (``Float``, ``Int``, ...) or any object the complexity hook
      knows: ``Param(key, value)``;
    - a dict: ``Choice(key, {label: from_dict(option)})``, where an option is a
      dict, a node or ``None`` (empty);
    - a list or tuple: ``Param(key, Categorical(value))``;
    - a str, number, bool or ``None``: ``Param(key, Constant(value))``;
    - a node: used as is (a :class:`Param`, :class:`Choice` or :class:`Optional`
      must carry ``key`` as its name).

    Example: ``from_dict({"model": {"svm": {"C": Float(1e-3, 1e3, log=True)},
    "knn": {"k": Int(1, 50)}}})`` is one choice ``model`` with two options.
    """
    if not isinstance(spec, Mapping):
        raise SearchSpaceError(f"a search space must be a dict, got {type(spec).__name__}")
    return Group(tuple(_entry(str(key), value) for key, value in spec.items()), name)


def _entry(key: str, value: Any) -> Node:
    if isinstance(value, (Param, Choice, Optional)):
        if value.name != key:
            raise SearchSpaceError(
                f"parameter {key!r}: the node under this key is named {value.name!r}; "
                "use the same name for both"
            )
        return value
    if isinstance(value, Group):
        return value
    if isinstance(value, Mapping):
        options: dict[str, Node | None] = {}
        for label, option in value.items():
            if option is None or isinstance(option, (Param, Group, Choice, Optional)):
                options[str(label)] = option
            elif isinstance(option, Mapping):
                options[str(label)] = from_dict(option, name=f"{key}={label}")
            else:
                raise SearchSpaceError(
                    f"choice {key!r}: option {label!r} must be a dict, a node or None, "
                    f"got {type(option).__name__}"
                )
        return Choice(key, options)
    if isinstance(value, (list, tuple)):
        return Param(key, Categorical(value))
    if value is None or isinstance(value, (str, int, float, bool)):
        return Param(key, Constant(value))
    return Param(key, value)


def _children(node: Node) -> Iterable[Node]:
    if isinstance(node, Group):
        return node.children
    if isinstance(node, Choice):
        return (_node_or_empty(n) for n in node.options.values())
    if isinstance(node, Optional):
        return (node.node,)
    return ()


def validate_space(space: Node) -> frozenset[str]:
    """Check a tree and return every name it may set; O(nodes x names).

    Raises :class:`SearchSpaceError` (one line, naming the culprit) for a node
    of an unknown type, an empty or unnamed choice, an invalid distribution
    (e.g. ``low > high``), or two parameters (or branch names) with the same
    name inside one subspace.
    """
    if isinstance(space, Param):
        if not isinstance(space.name, str) or not space.name:
            raise SearchSpaceError(f"a parameter needs a non-empty string name, got {space.name!r}")
        validate = getattr(space.distribution, "validate", None)
        if callable(validate):
            validate(space.name)
        return frozenset((space.name,))
    if isinstance(space, Group):
        if isinstance(space.children, (str, bytes, Mapping)) or not isinstance(
            space.children, Iterable
        ):
            raise SearchSpaceError(
                f"group {space.name!r}: children must be a sequence of nodes; "
                "use from_dict() to build a group from a dict"
            )
        names: set[str] = set()
        for child in space.children:
            child_names = validate_space(child)
            _no_clash(names, child_names)
            names |= child_names
        return frozenset(names)
    if isinstance(space, Choice):
        return _validate_branch(space.name, list(_children(space)), "choice")
    if isinstance(space, Optional):
        return _validate_branch(space.name, [space.node], "optional")
    raise SearchSpaceError(
        f"{space!r} is not a search-space node; use Param, Group, Choice, Optional or from_dict()"
    )


def _validate_branch(name: str, options: list[Node], what: str) -> frozenset[str]:
    if not isinstance(name, str) or not name:
        raise SearchSpaceError(f"a {what} needs a non-empty string name, got {name!r}")
    if not options:
        raise SearchSpaceError(f"choice {name!r} has no options; give it at least one")
    names: set[str] = set()
    for option in options:
        option_names = validate_space(option)
        _no_clash({name}, option_names)
        names |= option_names
    return frozenset(names | {name})


def _no_clash(seen: set[str], new: frozenset[str]) -> None:
    clash = seen & new
    if clash:
        first = sorted(clash)[0]
        raise SearchSpaceError(
            f"parameter {first!r} appears twice in one subspace; give each parameter a unique name"
        )


def flatten(node: Node) -> dict[str, object]:
    """Every parameter of ``node`` with no splitting; O(nodes).

    Choices and optional nodes become ``Categorical`` parameters of their labels;
    a name defined in several exclusive options keeps its first definition.
    """
    found: dict[str, object] = {}
    _flatten_into(node, found)
    return found


def _flatten_into(node: Node, found: dict[str, object]) -> None:
    if isinstance(node, Param):
        found.setdefault(node.name, node.distribution)
        return
    if isinstance(node, Choice):
        found.setdefault(node.name, Categorical(tuple(node.options)))
    elif isinstance(node, Optional):
        found.setdefault(node.name, Categorical(OPTIONAL_LABELS))
    for child in _children(node):
        _flatten_into(child, found)
