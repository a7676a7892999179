"""Pruning hook-up without optuna: the exception comes from the trial's own package."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from hwaware_plugins.errors import ConfigError, HwawareError
from hwaware_plugins.training import PrunedError
from hwaware_plugins.training._prune import check_trial, pruned_exception_for


class PlainTrial:
    def report(self, value: float, step: int) -> None: ...

    def should_prune(self) -> bool:
        return False


@pytest.fixture
def fake_framework() -> Iterator[types.ModuleType]:
    """A package ``fakeopt`` with ``TrialPruned`` and a trial class in ``fakeopt.trial``."""
    package = types.ModuleType("fakeopt")
    sub = types.ModuleType("fakeopt.trial")

    class TrialPruned(Exception):
        pass

    class Trial(PlainTrial):
        pass

    Trial.__module__ = "fakeopt.trial"
    package.TrialPruned = TrialPruned  # type: ignore[attr-defined]
    sub.Trial = Trial  # type: ignore[attr-defined]
    sys.modules["fakeopt"], sys.modules["fakeopt.trial"] = package, sub
    yield package
    del sys.modules["fakeopt"], sys.modules["fakeopt.trial"]


def test_the_framework_exception_is_found_in_a_parent_package(
    fake_framework: types.ModuleType,
) -> None:
    trial = fake_framework.__dict__["TrialPruned"]
    assert pruned_exception_for(sys.modules["fakeopt.trial"].Trial()) is trial


def test_without_a_framework_exception_the_core_one_is_used() -> None:
    assert pruned_exception_for(PlainTrial()) is PrunedError
    assert issubclass(PrunedError, HwawareError)


def test_an_object_without_the_trial_methods_is_rejected() -> None:
    check_trial(PlainTrial())
    with pytest.raises(ConfigError, match="should_prune"):
        check_trial(object())
