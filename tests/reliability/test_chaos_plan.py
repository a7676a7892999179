"""The chaos fault plan: seeded, independent per attempt, at the requested rates."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwaware_plugins.chaos import ChaosRates, fault_for
from hwaware_plugins.errors import ConfigError

rates_strategy = st.tuples(
    st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)
).filter(lambda r: sum(r) <= 1)


@given(rates=rates_strategy, seed=st.integers(0, 2**32), key=st.text(max_size=20),
       attempt=st.integers(0, 10))
@settings(max_examples=200, deadline=None)
def test_same_arguments_same_fault(rates: tuple[float, float, float], seed: int, key: str,
                                   attempt: int) -> None:
    plan = ChaosRates(*rates)
    assert fault_for(plan, seed, key, attempt) == fault_for(plan, seed, key, attempt)


@given(seed=st.integers(0, 2**32), attempt=st.integers(0, 5))
@settings(max_examples=50, deadline=None)
def test_zero_rates_never_inject_and_full_crash_always_does(seed: int, attempt: int) -> None:
    assert fault_for(ChaosRates(), seed, "t", attempt) is None
    assert fault_for(ChaosRates(crash=1.0), seed, "t", attempt) == "crash"


def test_observed_rates_match_the_requested_ones() -> None:
    plan = ChaosRates(crash=0.1, oom=0.05, timeout=0.05)
    counts = Counter(fault_for(plan, 7, f"trial-{n}", 0) for n in range(20000))
    assert counts["crash"] / 20000 == pytest.approx(0.1, abs=0.01)
    assert counts["oom"] / 20000 == pytest.approx(0.05, abs=0.008)
    assert counts["timeout"] / 20000 == pytest.approx(0.05, abs=0.008)


def test_a_retry_draws_afresh() -> None:
    plan = ChaosRates(crash=0.5)
    first = [fault_for(plan, 1, f"t{n}", 0) for n in range(200)]
    second = [fault_for(plan, 1, f"t{n}", 1) for n in range(200)]
    assert first != second


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        (ChaosRates(crash=-0.1), "crash rate (--crash-rate) must be a number in [0, 1]"),
        (ChaosRates(oom=float("nan")), "oom rate"),
        (ChaosRates(timeout=True), "timeout rate"),
        (ChaosRates(crash=0.6, oom=0.5), "sum to 1.1; they must sum to at most 1"),
    ],
)
def test_invalid_rates_are_named(rates: ChaosRates, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        rates.validate()
