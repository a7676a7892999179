"""Complexity rules: how large is a distribution, and a subspace made of them?

Two rules ship with the core (both registered as components of kind
``"complexity"``):

- ``"hwaware"`` (default): a log-volume in normalised units. Each parameter
  counts as the number of settings worth telling apart, ``s``, and a subspace
  is ``sum(ln s)``. Unit changes never alter it; see ``docs/complexity.md``.
- ``"shadho"``: SHADHO's reference rule, ``2 + |b - a|`` for continuous
  domains (``[a, b]`` the central interval of mass ``q``), ``2 - 1/n`` for
  ``n`` discrete values, 1 for constants, combined by product (or sum).

Distributions the core does not know are asked of the
``hwaware_distribution_complexity`` hook.

Every function here is pure and costs O(number of parameters); rule objects are
immutable after construction and safe to share between threads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any, Protocol, runtime_checkable

from hwaware_plugins.errors import ConfigError, SearchSpaceError
from hwaware_plugins.space._distributions import Categorical, Constant, Float, Int, Normal

_COMBINES = ("product", "sum")
_KNOWN = (Float, Int, Normal, Categorical, Constant)


@runtime_checkable
class ComplexityRule(Protocol):
    """What a complexity rule component provides (the ``"complexity"`` kind)."""

    name: str

    def distribution(self, dist: object, name: str = "?") -> float:
        """Return the complexity of one distribution."""
        ...

    def __call__(self, params: Mapping[str, object]) -> float:
        """Return the complexity of a subspace given as ``{name: distribution}``."""
        ...


# --------------------------------------------------------------------- helpers


def _check_q(q: float) -> None:
    if not (isinstance(q, (int, float)) and 0.0 < q < 1.0):
        raise ConfigError(f"q must be a probability strictly between 0 and 1, got {q!r}")


def _z(q: float) -> float:
    """The standard-normal quantile bounding the central interval of mass ``q``."""
    return NormalDist().inv_cdf(0.5 + q / 2.0)


def _steps(low: float, high: float, step: float) -> int:
    """How many grid points ``low, low + step, ...`` lie in ``[low, high]``."""
    # A small tolerance so that (1.0 - 0.1) / 0.1 counts 10 steps, not 9.
    return math.floor((high - low) / step + 1e-9) + 1


def _ask_plugins(dist: object, rule: str, name: str) -> float:
    from hwaware_plugins._manager import get_plugin_manager

    kind = type(dist).__qualname__
    answer: Any = None
    plugin = "?"
    given = {"distribution": dist, "rule": rule}
    # The hook is first-result; called one implementation at a time (in pluggy's order)
    # so that an error or a bad answer names the plugin that gave it.
    for impl in reversed(get_plugin_manager().hook.hwaware_distribution_complexity.get_hookimpls()):
        plugin = impl.plugin_name
        try:
            answer = impl.function(**{arg: given[arg] for arg in impl.argnames})
        except Exception as exc:
            raise SearchSpaceError(
                f"parameter {name!r}: plugin {plugin!r} failed in "
                f"hwaware_distribution_complexity for {kind} under rule {rule!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if answer is not None:
            break
    if answer is None:
        raise SearchSpaceError(
            f"parameter {name!r}: no complexity known for distribution type {kind} under rule "
            f"{rule!r}; register a plugin implementing hwaware_distribution_complexity"
        )
    try:
        value = float(answer)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise SearchSpaceError(
            f"parameter {name!r}: plugin {plugin!r} answered {answer!r} in "
            f"hwaware_distribution_complexity for {kind} under rule {rule!r}; it must return "
            "a finite float >= 0"
        )
    return value


def _validate(dist: object, name: str) -> None:
    if isinstance(dist, _KNOWN):
        dist.validate(name)


# ----------------------------------------------------------------- shadho rule


def shadho_distribution(dist: object, *, q: float = 0.99, name: str = "?") -> float:
    """SHADHO's complexity of one distribution (>= 1); O(1).

    Continuous: ``2 + |b - a|`` with ``[a, b]`` the central interval of mass
    ``q``, in log10 exponent space for log scales. Discrete with ``n`` values
    (integers, categoricals, quantised floats): ``2 - 1/n``. Constant: 1.
    """
    _check_q(q)
    _validate(dist, name)
    if isinstance(dist, Constant):
        return 1.0
    if isinstance(dist, Categorical):
        return 2.0 - 1.0 / len(dist.choices)
    if isinstance(dist, Int):
        return 2.0 - 1.0 / dist.n_values
    if isinstance(dist, Float):
        if dist.step is not None:
            return 2.0 - 1.0 / _steps(dist.low, dist.high, dist.step)
        low, high = dist.low, dist.high
        width = math.log10(high) - math.log10(low) if dist.log else high - low
        return 2.0 + q * width
    if isinstance(dist, Normal):
        half = _z(q) * dist.sigma
        if dist.step is not None:
            low, high = dist.mu - half, dist.mu + half
            if dist.log:
                low, high = math.exp(low), math.exp(high)
            return 2.0 - 1.0 / _steps(low, high, dist.step)
        width = 2.0 * half
        if dist.log:
            width /= math.log(10.0)
        return 2.0 + width
    return _ask_plugins(dist, "shadho", name)


class ShadhoComplexity:
    """SHADHO's rule as a reusable object (component ``complexity/shadho``).

    :param q: mass of the central interval measured for continuous domains.
    :param combine: ``"product"`` (SHADHO's later code) or ``"sum"`` (its earlier code).

    Cost: O(number of parameters) per call. Immutable; thread-safe.
    """

    name = "shadho"

    def __init__(self, *, q: float = 0.99, combine: str = "product") -> None:
        self.q = q
        self.combine = combine

    def distribution(self, dist: object, name: str = "?") -> float:
        """Return the SHADHO complexity of ``dist`` (see :func:`shadho_distribution`)."""
        return shadho_distribution(dist, q=self.q, name=name)

    def __call__(self, params: Mapping[str, object]) -> float:
        """Combine the parameters' complexities; an empty subspace is 1 (product) or 0 (sum)."""
        if self.combine not in _COMBINES:
            raise ConfigError(
                f"combine must be one of {', '.join(_COMBINES)}, got {self.combine!r}"
            )
        values = [self.distribution(d, name) for name, d in params.items()]
        return math.prod(values) if self.combine == "product" else math.fsum(values)

    def __repr__(self) -> str:
        return f"ShadhoComplexity(q={self.q!r}, combine={self.combine!r})"


# ---------------------------------------------------------------- hwaware rule


def hwaware_levels(
    dist: object, *, resolution: int = 10, q: float = 0.99, name: str = "?"
) -> float:
    """The number of settings of ``dist`` worth telling apart (>= 1); O(1).

    - constant: 1; categorical: its number of choices;
    - a continuous linear range: ``resolution`` (its units carry no information);
    - a log range spanning ``D`` decades: ``resolution * max(1, D)``;
    - integers and quantised floats: their number of values, capped by the
      continuous value of the same range (a grid finer than the resolution
      adds nothing);
    - a normal: as a range over its central interval of mass ``q``.
    """
    _check_q(q)
    if not (isinstance(resolution, int) and resolution >= 2):
        raise ConfigError(f"resolution must be an integer >= 2, got {resolution!r}")
    _validate(dist, name)
    if isinstance(dist, Constant):
        return 1.0
    if isinstance(dist, Categorical):
        return float(len(dist.choices))
    if isinstance(dist, (Float, Int)):
        low, high = float(dist.low), float(dist.high)
        if low == high:
            return 1.0
        cap = resolution * max(1.0, math.log10(high / low)) if dist.log else float(resolution)
        if isinstance(dist, Int):
            return min(dist.n_values, cap)
        if dist.step is not None:
            return min(_steps(low, high, dist.step), cap)
        return cap
    if isinstance(dist, Normal):
        half = _z(q) * dist.sigma
        if dist.log:
            low, high = math.exp(dist.mu - half), math.exp(dist.mu + half)
            cap = resolution * max(1.0, 2.0 * half / math.log(10.0))
        else:
            low, high = dist.mu - half, dist.mu + half
            cap = float(resolution)
        if dist.step is not None:
            return min(_steps(low, high, dist.step), cap)
        return cap
    return math.exp(_ask_plugins(dist, "hwaware", name))


def hwaware_distribution(
    dist: object, *, resolution: int = 10, q: float = 0.99, name: str = "?"
) -> float:
    """The hwaware complexity of one distribution: ``ln`` of :func:`hwaware_levels` (>= 0)."""
    if not isinstance(dist, _KNOWN):
        # Plugins answer in log units directly; skip the exp/log round trip.
        _check_q(q)
        return _ask_plugins(dist, "hwaware", name)
    return math.log(hwaware_levels(dist, resolution=resolution, q=q, name=name))


class HwawareComplexity:
    """The scale-invariant log-volume rule (component ``complexity/hwaware``).

    :param resolution: settings told apart across one continuous linear range
        (and per decade of a log range).
    :param q: mass of the central interval used for normal distributions.

    Cost: O(number of parameters) per call. Immutable; thread-safe.
    """

    name = "hwaware"

    def __init__(self, *, resolution: int = 10, q: float = 0.99) -> None:
        self.resolution = resolution
        self.q = q

    def distribution(self, dist: object, name: str = "?") -> float:
        """Return the log-size of ``dist`` (see :func:`hwaware_distribution`)."""
        return hwaware_distribution(dist, resolution=self.resolution, q=self.q, name=name)

    def __call__(self, params: Mapping[str, object]) -> float:
        """Return the subspace's log-volume: the sum of its parameters' log-sizes."""
        return math.fsum(self.distribution(d, name) for name, d in params.items())

    def __repr__(self) -> str:
        return f"HwawareComplexity(resolution={self.resolution!r}, q={self.q!r})"


# ------------------------------------------------------------------ public API


def get_rule(rule: str | ComplexityRule, **options: Any) -> ComplexityRule:
    """Return a rule object: ``rule`` itself, a built-in by name, or a registered component.

    Cost: O(1) for the built-ins; other names go through the plugin registry.
    """
    if not isinstance(rule, str):
        return rule
    if rule == "hwaware":
        return HwawareComplexity(**options)
    if rule == "shadho":
        return ShadhoComplexity(**options)
    from hwaware_plugins._manager import load

    built: ComplexityRule = load("complexity", rule, **options)
    return built


def distribution_complexity(
    dist: object, *, rule: str | ComplexityRule = "hwaware", q: float = 0.99
) -> float:
    """Return the complexity of one distribution under ``rule``; O(1).

    ``"hwaware"`` answers a log-size (>= 0), ``"shadho"`` a factor (>= 1).
    Unknown distribution types are asked of the ``hwaware_distribution_complexity``
    hook; :class:`SearchSpaceError` when no plugin knows them.
    """
    if rule == "shadho":
        return shadho_distribution(dist, q=q)
    if rule == "hwaware":
        return hwaware_distribution(dist, q=q)
    return get_rule(rule).distribution(dist)


def subspace_complexity(
    params: Mapping[str, object], *, rule: str | ComplexityRule = "hwaware"
) -> float:
    """Return the complexity of a subspace given as ``{name: distribution}``.

    ``"hwaware"``: the sum of log-sizes; ``"shadho"``: the product of SHADHO
    factors. Cost: O(number of parameters).
    """
    return get_rule(rule)(params)
