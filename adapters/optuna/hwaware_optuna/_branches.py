"""Define-by-run subspaces: which categoricals branch, and how a subspace is named.

A *branch* is a partial assignment of branching parameters, a tuple of
``(name, value)`` pairs sorted by name. A subspace is the branch a completed
trial took; its key reads ``"classifier=svm/kernel=rbf"`` (names in sorted
order, so a key never changes as trials accumulate). A trial belongs to a
branch when it has every one of the branch's parameters with the same value.

Detection rule: a categorical ``P`` branches when, for some value ``v`` and some
other parameter ``Q``, every completed trial with ``P = v`` used ``Q`` and no
completed trial with another value of ``P`` did, with at least ``min_support``
trials on each side. An independent categorical is flagged by that rule only
by chance (all its ``v`` trials, and none of the others, happened to take a
branch using ``Q``); the odds fall geometrically with the number of trials,
and the verdict is recomputed as trials accumulate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Hashable, Mapping
from typing import Any

Branch = tuple[tuple[str, Any], ...]

_MISSING = object()


def branch_of(params: Mapping[str, Any], names: Collection[str]) -> Branch:
    """The values ``params`` gives to the branching parameters ``names`` (sorted by name)."""
    return tuple(sorted(((n, params[n]) for n in names if n in params), key=lambda kv: kv[0]))


def branch_key(branch: Branch) -> str:
    """The readable, stable key of a branch: ``"a=x/b=y"``; ``"*"`` for the empty branch."""
    if not branch:
        return "*"
    return "/".join(f"{name}={value}" for name, value in branch)


def extends(params: Mapping[str, Any], branch: Branch) -> bool:
    """True when ``params`` holds every parameter of ``branch`` with the same value."""
    return all(params.get(name, _MISSING) == value for name, value in branch)


def consistent(branch: Branch, fixed: Mapping[str, Any]) -> bool:
    """True when every fixed value of a branching parameter agrees with ``branch``.

    ``fixed`` is already restricted to branching parameters; a fixed parameter
    the branch does not mention makes it inconsistent (that branch never uses it).
    """
    values = dict(branch)
    return all(values.get(name, _MISSING) == value for name, value in fixed.items())


class BranchDetector:
    """Incremental counts for the detection rule above.

    Cost: :meth:`add` is O(categoricals x parameters) of the trial;
    :meth:`branching` is O(observed (categorical, value, parameter) triples)
    and cached until the next :meth:`add`. Not thread-safe.
    """

    def __init__(self, *, min_support: int = 2) -> None:
        self.min_support = min_support
        self._n_value: Counter[tuple[str, Hashable]] = Counter()
        self._n_param: Counter[str] = Counter()
        self._with_value: Counter[tuple[str, Hashable, str]] = Counter()
        self._with_param: Counter[tuple[str, str]] = Counter()
        self._values: dict[str, set[Hashable]] = {}
        self._others: dict[str, set[str]] = {}
        self._cached: frozenset[str] | None = frozenset()

    def add(self, params: Mapping[str, Any], categoricals: Collection[str]) -> None:
        """Count one completed trial; ``categoricals`` names its categorical parameters."""
        for name in categoricals:
            if name not in params:
                continue
            value = params[name]
            self._n_value[(name, value)] += 1
            self._n_param[name] += 1
            self._values.setdefault(name, set()).add(value)
            others = self._others.setdefault(name, set())
            for other in params:
                if other != name:
                    self._with_value[(name, value, other)] += 1
                    self._with_param[(name, other)] += 1
                    others.add(other)
            self._cached = None

    def observed_values(self, name: str) -> frozenset[Hashable]:
        """The values completed trials gave to the categorical ``name``."""
        return frozenset(self._values.get(name, ()))

    def branching(self) -> frozenset[str]:
        """The categoricals the rule flags as branching."""
        if self._cached is None:
            self._cached = frozenset(name for name in self._values if self._branches(name))
        return self._cached

    def _branches(self, name: str) -> bool:
        total = self._n_param[name]
        for value in self._values[name]:
            n_value = self._n_value[(name, value)]
            if n_value < self.min_support or total - n_value < self.min_support:
                continue
            for other in self._others[name]:
                with_value = self._with_value[(name, value, other)]
                if with_value == n_value and self._with_param[(name, other)] == with_value:
                    return True
        return False
