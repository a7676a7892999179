"""Reading a hyperopt search space: its branches and its distributions, from the pyll graph.

``hp.choice(label, options)`` and ``hp.pchoice(label, ...)`` build
``switch(hyperopt_param(label, randint|categorical), *options)``. A switch
whose options hold hyperparameters of their own is a branch (a
:class:`~hwaware_plugins.space.Choice` of the core's space tree); a switch over
constants only (``hp.choice("act", ["relu", "tanh"])``) changes no parameter
set and is read as one categorical parameter. Every other ``hyperopt_param``
becomes a :class:`~hwaware_plugins.space.Param` whose distribution is the
core's equivalent of the hp distribution.

Every function here is pure and costs O(nodes of the graph).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hyperopt import pyll

from hwaware_plugins.space import (
    Categorical,
    Choice,
    Float,
    Group,
    Int,
    Node,
    Normal,
    Param,
)

_log = logging.getLogger(__name__)

# Keys whose literal string value names an option of a choice, in order of preference.
_NAME_KEYS = ("type", "name", "model", "kind", "family", "algorithm", "estimator", "classifier")


@dataclass(frozen=True)
class SwitchInfo:
    """One branching ``hp.choice``/``hp.pchoice``.

    :param label: the hyperparameter label of its index.
    :param option_labels: the readable label of each option, by index.
    :param index_node: the ``hyperopt_param`` node holding the index.
    """

    label: str
    option_labels: tuple[str, ...]
    index_node: Any

    def option_of(self, index: object) -> str | None:
        """The label of option ``index`` (numpy scalars accepted), or ``None`` if out of range."""
        try:
            position = int(index)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return None
        if 0 <= position < len(self.option_labels):
            return str(self.option_labels[position])
        return None


@dataclass(frozen=True)
class SpaceInfo:
    """A hyperopt space read as the core's tree plus its branching switches."""

    tree: Node
    switches: Mapping[str, SwitchInfo]


def _literal(node: Any) -> tuple[bool, Any]:
    if isinstance(node, pyll.Literal):
        return True, node.obj
    return False, None


def _has_param(node: Any) -> bool:
    return any(n.name == "hyperopt_param" for n in pyll.dfs(node))


def _constant(node: Any) -> tuple[bool, Any]:
    """The value of a sub-graph free of hyperparameters and randomness, if it has one."""
    known, value = _literal(node)
    if known:
        return True, value
    if _has_param(node):
        return False, None
    try:
        return True, pyll.rec_eval(node)
    except Exception:  # a node that needs an rng or a memo: not a constant
        return False, None


def _args(node: Any) -> list[Any] | None:
    values: list[Any] = []
    for arg in node.pos_args:
        known, value = _constant(arg)
        if not known:
            return None
        values.append(value)
    return values


def _kwargs(node: Any) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    for name, arg in node.named_args:
        if name in ("rng", "size"):
            continue
        known, value = _constant(arg)
        if not known:
            return None
        values[name] = value
    return values


def _bind(node: Any, names: Sequence[str]) -> dict[str, float] | None:
    args, kwargs = _args(node), _kwargs(node)
    if args is None or kwargs is None:
        return None
    bound = dict(zip(names, args, strict=False))
    bound.update({k: v for k, v in kwargs.items() if k in names})
    try:
        return {k: float(v) for k, v in bound.items()}
    except (TypeError, ValueError):
        return None


def hp_distribution(dist_node: Any, label: str = "?") -> object:
    """The core distribution equivalent to a ``hyperopt_param``'s distribution node.

    uniform, quniform, loguniform, qloguniform (bounds are exponents), normal,
    qnormal, lognormal, qlognormal, randint (``randint(upper)`` or
    ``randint(low, high)``) and categorical (``hp.pchoice`` indices) are mapped
    exactly. A distribution whose arguments are themselves hyperparameters, or
    of an unknown kind, is read as ``Float(0, 1)``, which the scale-invariant
    ``hwaware`` complexity rule counts as any linear range (logged at debug level).
    """
    name = dist_node.name
    spec: dict[str, tuple[str, ...]] = {
        "uniform": ("low", "high"),
        "quniform": ("low", "high", "q"),
        "loguniform": ("low", "high"),
        "qloguniform": ("low", "high", "q"),
        "normal": ("mu", "sigma"),
        "qnormal": ("mu", "sigma", "q"),
        "lognormal": ("mu", "sigma"),
        "qlognormal": ("mu", "sigma", "q"),
        "randint": ("low", "high"),
    }
    if name == "categorical":
        known, p = _constant(dist_node.pos_args[0]) if dist_node.pos_args else (False, None)
        if known and p is not None:
            return Categorical(tuple(range(len(p))))
    elif name in spec:
        b = _bind(dist_node, spec[name])
        if b is not None:
            return _from_bound(name, b)
    _log.debug("hyperparameter %r: distribution %r read as Float(0, 1)", label, name)
    return Float(0.0, 1.0)


def _from_bound(name: str, b: Mapping[str, float]) -> object:
    q = b.get("q")
    if name == "randint":
        if "high" not in b:
            return Int(0, int(b["low"]) - 1)
        return Int(int(b["low"]), int(b["high"]) - 1)
    if name in ("uniform", "quniform"):
        return Float(b["low"], b["high"], step=q)
    if name in ("loguniform", "qloguniform"):
        return Float(math.exp(b["low"]), math.exp(b["high"]), log=True, step=q)
    return Normal(b["mu"], b["sigma"], log=name.startswith(("log", "qlog")), step=q)


def _option_name(option: Any, index: int) -> str:
    known, value = _literal(option)
    if known and isinstance(value, str | int | float | bool):
        return str(value)
    if option.name == "dict":
        named = dict(option.named_args)
        for key in (*_NAME_KEYS, *sorted(named)):
            is_literal, value = _literal(named.get(key))
            if is_literal and isinstance(value, str) and value:
                return value
    return str(index)


def _option_labels(options: Sequence[Any]) -> tuple[str, ...]:
    names = [_option_name(option, i) for i, option in enumerate(options)]
    unusable = len(set(names)) != len(names) or any("/" in n or "=" in n for n in names)
    return tuple(str(i) for i in range(len(options))) if unusable else tuple(names)


def _branching_switch(node: Any) -> bool:
    """A switch whose options hold parameters under a labelled index: a branch point."""
    return (node.name == "switch" and node.pos_args[0].name == "hyperopt_param"
            and any(_has_param(o) for o in node.pos_args[1:]))


def _unconditional_labels(expr: Any) -> frozenset[str]:
    """Labels of the parameters reachable without entering a branch's option.

    A hyperopt label is one node, sampled once per trial: one used outside the
    branches and inside one too is an unconditional parameter. Cost: O(nodes).
    """
    labels: set[str] = set()
    seen: set[int] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.name == "hyperopt_param":
            labels.add(str(node.arg["label"].obj))
        stack.extend([node.pos_args[0]] if _branching_switch(node) else node.inputs())
    return frozenset(labels)


class _Walker:
    def __init__(self, unconditional: frozenset[str] = frozenset()) -> None:
        self.switches: dict[str, SwitchInfo] = {}
        self.unconditional = unconditional

    def node(self, node: Any) -> list[Node]:
        """The tree nodes under ``node``, deduplicated by parameter name by the caller."""
        if node.name == "switch":
            return self.switch(node)
        if node.name == "hyperopt_param":
            label = str(node.arg["label"].obj)
            return [Param(label, hp_distribution(node.arg["obj"], label))]
        found: list[Node] = []
        for child in node.inputs():
            found.extend(self.node(child))
        return found

    def switch(self, node: Any) -> list[Node]:
        index, options = node.pos_args[0], node.pos_args[1:]
        found: list[Node] = []
        if not _branching_switch(node):
            # A choice among constants (or a computed index): no parameter set changes.
            if index.name == "hyperopt_param":
                label = str(index.arg["label"].obj)
                found.append(Param(label, Categorical(tuple(range(len(options))))))
            else:
                found.extend(self.node(index))
            for option in options:
                found.extend(self.node(option))
            return found
        label = str(index.arg["label"].obj)
        names = _option_labels(options)
        self.switches[label] = SwitchInfo(label, names, index)
        branches = {name: _group(self._conditional(option), label) for name, option in zip(
            names, options, strict=True)}
        return [Choice(label, branches)]


    def _conditional(self, option: Any) -> list[Node]:
        """The nodes under a branch's option but its unconditional parameters (kept above)."""
        return [n for n in self.node(option)
                if not (isinstance(n, Param) and n.name in self.unconditional)]


def _group(nodes: list[Node], name: str | None = None) -> Group:
    unique: list[Node] = []
    seen: set[str] = set()
    for node in nodes:
        key = getattr(node, "name", None) if not isinstance(node, Group) else None
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        unique.append(node)
    return Group(tuple(unique), name)


def read_space(space: object) -> SpaceInfo:
    """Read a hyperopt space (a pyll graph, or a dict/list of hp expressions).

    Returns the core's space tree (for subspace enumeration and complexity) and
    the branching switches by label. Cost: O(nodes) graph walks per switch.
    """
    expr = pyll.as_apply(space)
    walker = _Walker(_unconditional_labels(expr))
    tree = _group(walker.node(expr))
    return SpaceInfo(tree, dict(walker.switches))


def fix_branches(space: object, indices: Mapping[str, int], switches: Mapping[str, SwitchInfo]
                 ) -> Any:
    """A copy of the space in which each switch ``{label: index}`` is its chosen option.

    The switch node is replaced by the (copied) sub-expression of option
    ``index``, so the copy holds neither the switch's index hyperparameter nor
    the options not chosen: any algorithm (TPE, ATPE, random, anneal) samples
    only the chosen branch's hyperparameters, and none of them has to read a
    degenerate distribution for the fixed choice. The fixed indices are not
    in the copy's trial documents: :func:`fixed_choices_doc` adds them back.
    Switches not named in ``indices`` stay switches.
    Cost: one graph copy, O(nodes).
    """
    expr = pyll.as_apply(space)
    fixed = {id(switches[label].index_node): int(index) for label, index in indices.items()}
    if not fixed:
        return expr
    memo: dict[Any, Any] = {}
    for node in pyll.dfs(expr):  # inputs come before the nodes that use them
        index = fixed.get(id(node.pos_args[0])) if node.name == "switch" else None
        if index is not None:
            memo[node] = memo[node.pos_args[1 + index]]
        else:
            memo[node] = node.clone_from_inputs([memo[arg] for arg in node.inputs()])
    return memo[expr]


def fixed_choices_doc(doc: dict[str, Any], labels: Sequence[str], indices: Mapping[str, int]
                      ) -> dict[str, Any]:
    """Complete a trial document proposed on a :func:`fix_branches` copy of the space.

    Every label of the full space gets its ``misc["idxs"]``/``misc["vals"]``
    entry (empty when the copy did not hold it: an option not chosen), each
    fixed switch gets its index, and every value present is indexed by the
    trial id (ATPE writes ``[0]``), so the document reads as one of the full
    space. Modifies and returns ``doc``. Cost: O(labels).
    """
    misc = doc["misc"]
    for label in labels:
        misc["vals"].setdefault(label, [])
    for label, values in misc["vals"].items():
        misc["idxs"][label] = [doc["tid"]] if len(values) else []
    for label, index in indices.items():
        misc["idxs"][label] = [doc["tid"]]
        misc["vals"][label] = [int(index)]
    return doc
