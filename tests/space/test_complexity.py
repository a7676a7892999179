"""Complexity rules: worked examples (checked by hand), the hook, properties."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hwaware_plugins
from hwaware_plugins import Component, ConfigError, SearchSpaceError, hookimpl
from hwaware_plugins.space import (
    Categorical,
    Constant,
    Float,
    HwawareComplexity,
    Int,
    Normal,
    ShadhoComplexity,
    distribution_complexity,
    subspace_complexity,
)

# z such that a standard normal holds 99 % of its mass in [-z, z].
Z99 = 2.5758293035489


# ------------------------------------------------------------------ shadho


@pytest.mark.parametrize(
    ("dist", "expected"),
    [
        (Float(0, 10), 2 + 0.99 * 10),  # 11.9
        (Float(-1000, 1000), 2 + 0.99 * 2000),  # 1982: the scale problem
        (Float(1e-3, 1e3, log=True), 2 + 0.99 * 6),  # 6 decades in log10 space: 7.94
        (Float(0, 1, step=0.25), 2 - 1 / 5),  # 0, .25, .5, .75, 1 -> discrete
        (Int(1, 4), 2 - 1 / 4),  # 1.75
        (Int(1, 1000), 2 - 1 / 1000),  # 1.999
        (Categorical(["a", "b", "c"]), 2 - 1 / 3),
        (Constant(7), 1.0),
        (Normal(0, 1), 2 + 2 * Z99),  # central 99 %: [-2.576, 2.576] -> 7.152
        (Normal(0, 1, log=True), 2 + 2 * Z99 / math.log(10)),  # exponent in log10: 4.237
    ],
)
def test_shadho_worked_examples(dist: object, expected: float) -> None:
    assert distribution_complexity(dist, rule="shadho") == pytest.approx(expected, rel=1e-9)


def test_shadho_q_widens_the_measured_interval() -> None:
    assert distribution_complexity(Float(0, 10), rule="shadho", q=0.9999) == pytest.approx(11.999)


def test_shadho_combines_by_product_or_sum() -> None:
    params = {"x": Float(0, 10), "n": Int(1, 4)}
    # product: 11.9 * 1.75 = 20.825; sum: 11.9 + 1.75 = 13.65
    assert subspace_complexity(params, rule="shadho") == pytest.approx(20.825)
    assert ShadhoComplexity(combine="sum")(params) == pytest.approx(13.65)
    assert ShadhoComplexity()({}) == 1.0


def test_shadho_svm_subspaces() -> None:
    c, gamma = Float(1e-3, 1e3, log=True), Float(1e-4, 1, log=True)
    rbf = {"C": c, "gamma": gamma}
    poly = {"C": c, "gamma": gamma, "degree": Int(2, 5), "coef0": Float(-1, 1)}
    # rbf: (2 + .99*6) * (2 + .99*4) = 7.94 * 5.96 = 47.3224
    assert subspace_complexity(rbf, rule="shadho") == pytest.approx(47.3224)
    # poly: 47.3224 * (2 - 1/4) * (2 + .99*2) = 47.3224 * 1.75 * 3.98 = 329.600516
    assert subspace_complexity(poly, rule="shadho") == pytest.approx(329.600516)


def test_shadho_is_not_scale_invariant() -> None:
    small = distribution_complexity(Float(-1, 1), rule="shadho")
    large = distribution_complexity(Float(-1000, 1000), rule="shadho")
    assert large > 400 * small


# ----------------------------------------------------------------- hwaware


@pytest.mark.parametrize(
    ("dist", "levels"),
    [
        (Float(-1, 1), 10),  # a linear range: `resolution` settings, whatever its units
        (Float(-1000, 1000), 10),
        (Int(1, 1000), 10),  # 1000 values, but no finer than a continuous range
        (Int(1, 4), 4),
        (Int(0, 10, step=5), 3),  # 0, 5, 10
        (Float(1e-3, 1e3, log=True), 60),  # 6 decades x 10
        (Float(1, 5, log=True), 10),  # under one decade: like a linear range
        (Int(1, 1024, log=True), 10 * math.log10(1024)),  # 30.1 < 1024 values
        (Float(0, 1, step=0.25), 5),
        (Float(0, 1, step=0.01), 10),  # 101 steps, capped at 10
        (Float(3, 3), 1),  # a degenerate range is a constant
        (Categorical(["a", "b", "c"]), 3),
        (Constant("x"), 1),
        (Normal(5, 100), 10),
        (Normal(0, 2, log=True), 10 * 2 * Z99 * 2 / math.log(10)),  # 4.47 decades -> 44.7
        (Normal(0, 1, step=1.0), 6),  # [-2.58, 2.58] holds -2.58 + 0..5
    ],
)
def test_hwaware_worked_examples(dist: object, levels: float) -> None:
    assert distribution_complexity(dist) == pytest.approx(math.log(levels), rel=1e-9)


def test_hwaware_svm_subspaces() -> None:
    c, gamma = Float(1e-3, 1e3, log=True), Float(1e-4, 1, log=True)
    rbf = {"C": c, "gamma": gamma}
    poly = {"C": c, "gamma": gamma, "degree": Int(2, 5), "coef0": Float(-1, 1)}
    # rbf: 60 x 40 = 2400 settings; poly: 60 x 40 x 4 x 10 = 96000
    assert subspace_complexity(rbf) == pytest.approx(math.log(2400))  # 7.78
    assert subspace_complexity(poly) == pytest.approx(math.log(96000))  # 11.47
    assert subspace_complexity({}) == 0.0


def test_hwaware_fixes_the_scale_problem() -> None:
    assert distribution_complexity(Float(-1000, 1000)) == distribution_complexity(Float(-1, 1))
    assert distribution_complexity(Float(-1000, 1000)) == distribution_complexity(Int(1, 1000))


def test_hwaware_resolution_option() -> None:
    rule = HwawareComplexity(resolution=100)
    assert rule({"x": Float(0, 1), "n": Int(1, 1000)}) == pytest.approx(math.log(100 * 100))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: distribution_complexity(Float(0, 1), q=1.5), "q must be"),
        (lambda: distribution_complexity(Float(0, 1), rule="shadho", q=0), "q must be"),
        (lambda: HwawareComplexity(resolution=1)({"x": Float(0, 1)}), "resolution"),
        (lambda: ShadhoComplexity(combine="max")({}), "combine"),
    ],
)
def test_bad_options_raise_config_errors(make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_invalid_distribution_names_the_parameter() -> None:
    with pytest.raises(SearchSpaceError, match=r"'lr'.*greater than"):
        subspace_complexity({"lr": Float(1, 0)})


# -------------------------------------------------------------------- hook


class Beta:
    """A distribution the core does not know."""

    def __init__(self, a: float, b: float) -> None:
        self.a, self.b = a, b


class BetaPlugin:
    @hookimpl
    def hwaware_distribution_complexity(self, distribution: Any, rule: str) -> float | None:
        if not isinstance(distribution, Beta):
            return None
        return math.log(7.0) if rule == "hwaware" else 3.5


@pytest.fixture
def beta_plugin() -> Iterator[BetaPlugin]:
    plugin = BetaPlugin()
    hwaware_plugins.register_plugin(plugin, name="beta-test")
    try:
        yield plugin
    finally:
        hwaware_plugins.unregister_plugin(plugin)


@pytest.mark.usefixtures("beta_plugin")
def test_unknown_distribution_is_asked_of_the_hook() -> None:
    assert distribution_complexity(Beta(2, 5)) == pytest.approx(math.log(7))
    assert distribution_complexity(Beta(2, 5), rule="shadho") == 3.5
    # log 7 + log 10 = log 70; 3.5 * 11.9 = 41.65
    assert subspace_complexity({"b": Beta(2, 5), "x": Float(0, 10)}) == pytest.approx(math.log(70))
    params = {"b": Beta(2, 5), "x": Float(0, 10)}
    assert subspace_complexity(params, rule="shadho") == pytest.approx(41.65)


def test_unknown_distribution_without_plugin_says_what_to_do() -> None:
    with pytest.raises(SearchSpaceError, match=r"'b'.*Beta.*hwaware_distribution_complexity"):
        subspace_complexity({"b": Beta(2, 5)})


def test_a_plugin_answering_nonsense_is_reported() -> None:
    class Bad:
        @hookimpl
        def hwaware_distribution_complexity(self, distribution: Any) -> float:
            return math.nan

    plugin = Bad()
    hwaware_plugins.register_plugin(plugin, name="bad-test")
    try:
        with pytest.raises(SearchSpaceError, match=r"plugin 'bad-test' answered nan.*finite float"):
            distribution_complexity(Beta(1, 1))
    finally:
        hwaware_plugins.unregister_plugin(plugin)


def test_a_plugin_raising_is_named_with_its_error() -> None:
    class Raising:
        @hookimpl
        def hwaware_distribution_complexity(self, distribution: Any, rule: str) -> float:
            raise RuntimeError("no idea")

    plugin = Raising()
    hwaware_plugins.register_plugin(plugin, name="raising-test")
    try:
        with pytest.raises(SearchSpaceError, match=r"plugin 'raising-test' failed in "
                           r"hwaware_distribution_complexity .*RuntimeError: no idea"):
            distribution_complexity(Beta(1, 1))
    finally:
        hwaware_plugins.unregister_plugin(plugin)


# -------------------------------------------------------------- components


def test_rules_are_registered_components() -> None:
    names = {c.name for c in hwaware_plugins.components(kind="complexity")}
    assert {"hwaware", "shadho"} <= names
    rule = hwaware_plugins.load("complexity", "shadho", combine="sum")
    assert rule({"x": Float(0, 10), "n": Int(1, 4)}) == pytest.approx(13.65)
    assert isinstance(hwaware_plugins.load("complexity", "hwaware"), HwawareComplexity)


def test_a_third_party_rule_is_found_by_name() -> None:
    class CountRule:
        name = "count"

        def distribution(self, dist: object, name: str = "?") -> float:
            return 1.0

        def __call__(self, params: Any) -> float:
            return float(len(params))

    class RulePlugin:
        @hookimpl
        def hwaware_register_components(self) -> list[Component]:
            return [Component("complexity", "count", CountRule)]

    plugin = RulePlugin()
    hwaware_plugins.register_plugin(plugin, name="count-rule-test")
    try:
        assert subspace_complexity({"a": Float(0, 1), "b": Int(0, 3)}, rule="count") == 2.0
    finally:
        hwaware_plugins.unregister_plugin(plugin)
    with pytest.raises(hwaware_plugins.UnknownComponentError):
        subspace_complexity({}, rule="count")


# -------------------------------------------------------------- properties

RULES = ("hwaware", "shadho")
# Magnitudes below 1e-100 would underflow to 0 when scaled, turning an interval into a point.
bounds = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).filter(
    lambda x: x == 0 or abs(x) >= 1e-100
)
positive = st.floats(min_value=1e-8, max_value=1e8)
scales = st.floats(min_value=1e-6, max_value=1e6)


@given(st.integers(-(10**6), 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
def test_monotone_in_integer_count(low: int, width: int, extra: int) -> None:
    for rule in RULES:
        narrow = distribution_complexity(Int(low, low + width), rule=rule)
        wide = distribution_complexity(Int(low, low + width + extra), rule=rule)
        assert wide >= narrow


@given(positive, st.floats(1.0, 1e6), st.floats(1.0, 1e6))
def test_monotone_in_decades_of_a_log_scale(low: float, ratio: float, more: float) -> None:
    for rule in RULES:
        narrow = distribution_complexity(Float(low, low * ratio, log=True), rule=rule)
        wide = distribution_complexity(Float(low, low * ratio * more, log=True), rule=rule)
        assert wide >= narrow - 1e-12


@given(st.integers(1, 200), st.integers(0, 200))
def test_monotone_in_categorical_count(n: int, extra: int) -> None:
    for rule in RULES:
        few = distribution_complexity(Categorical(range(n)), rule=rule)
        many = distribution_complexity(Categorical(range(n + extra)), rule=rule)
        assert many >= few


@given(st.integers(1, 10**4), st.integers(1, 10**4))
def test_monotone_in_quantisation_steps(coarse: int, finer: int) -> None:
    for rule in RULES:
        few = distribution_complexity(Float(0, 1, step=1 / coarse), rule=rule)
        many = distribution_complexity(Float(0, 1, step=1 / (coarse + finer)), rule=rule)
        assert many >= few


@given(bounds, bounds, scales)
def test_hwaware_is_invariant_under_unit_scaling(a: float, b: float, k: float) -> None:
    low, high = min(a, b), max(a, b)
    base = distribution_complexity(Float(low, high))
    assert distribution_complexity(Float(low * k, high * k)) == pytest.approx(base)
    assert distribution_complexity(Normal(low, 1.0)) == pytest.approx(
        distribution_complexity(Normal(low * k, k))
    )


@given(positive, st.floats(1.0, 1e6), scales)
def test_hwaware_log_scale_is_invariant_under_unit_scaling(
    low: float, ratio: float, k: float
) -> None:
    base = distribution_complexity(Float(low, low * ratio, log=True))
    scaled = distribution_complexity(Float(low * k, low * ratio * k, log=True))
    assert scaled == pytest.approx(base, rel=1e-9, abs=1e-9)


@given(st.integers(1, 1000), st.floats(-100, 100), scales)
def test_hwaware_quantised_is_invariant_under_unit_scaling(
    steps: int, low: float, k: float
) -> None:
    base = distribution_complexity(Float(low, low + steps * 0.5, step=0.5))
    scaled = distribution_complexity(Float(low * k, (low + steps * 0.5) * k, step=0.5 * k))
    assert scaled == pytest.approx(base)
