"""Optuna distributions as the core's framework-neutral distributions."""

from __future__ import annotations

from collections.abc import Mapping

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hwaware_plugins.space import Categorical, Constant, Float, Int


def to_core(distribution: BaseDistribution) -> object:
    """The core distribution equivalent to an optuna one (any other object passes through).

    A single-valued distribution becomes :class:`Constant`. Pure, O(1) except
    categoricals (O(choices)).
    """
    if isinstance(distribution, CategoricalDistribution):
        choices = tuple(distribution.choices)
        return Constant(choices[0]) if len(choices) == 1 else Categorical(choices)
    if isinstance(distribution, FloatDistribution):
        if distribution.single():
            return Constant(distribution.low)
        return Float(distribution.low, distribution.high, distribution.log, distribution.step)
    if isinstance(distribution, IntDistribution):
        if distribution.single():
            return Constant(distribution.low)
        return Int(distribution.low, distribution.high, distribution.log, distribution.step)
    return distribution


def to_core_space(distributions: Mapping[str, BaseDistribution]) -> dict[str, object]:
    """``{name: core distribution}`` for a whole subspace."""
    return {name: to_core(dist) for name, dist in distributions.items()}
