"""hyperopt's own unit tests of ``fmin`` pass with ``HardwareAwareTrials`` in place of ``Trials``.

The tests are imported from the installed hyperopt (``hyperopt/tests/unit/
test_fmin.py`` and ``test_pchoice.py``) and run unchanged, with ``Trials``
replaced where they find it: the name in their module, and
``hyperopt.base.Trials``, which ``fmin`` and ``generate_trials_to_calculate``
build when no trials are given (so ``points_to_evaluate`` queues its points in
a ``HardwareAwareTrials``). ``fmin`` without ``trials`` is given one as well,
so every evaluation runs in a worker process, ``SLOTS`` at a time, through the
adapter's own loop.

Not run with ``SLOTS`` slots (``SEQUENTIAL``): tests asserting what only a
sequential loop gives; they run with one slot, where it holds. Not run by
default (``FOR_TIME``): tests of hundreds of evaluations, or of a hundred whose
every worker must import the test modules to unpickle the objective (a test
case's method); set ``HWAWARE_HYPEROPT_SUITE=full`` to run them too.
"""

from __future__ import annotations

import os
import unittest
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hwaware_hyperopt import HardwareAwareTrials
from hyperopt import base
from hyperopt import fmin as hyperopt_fmin
from hyperopt.fmin import generate_trials_to_calculate
from hyperopt.tests.unit import test_fmin as fmin_tests
from hyperopt.tests.unit import test_pchoice as pchoice_tests

from .conftest import cpus

SLOTS = 2
"""Evaluations at once in the substituted trials."""

SEQUENTIAL: dict[str, str] = {
    "test_fmin.TestFmin.test_catch_eval_exceptions_False":
        "asserts that exactly one trial document was created before the error stopped fmin; "
        "with two slots two evaluations start at once",
    "test_fmin.test_timeout":
        "asserts that 10 one-second evaluations outlast a 5 s timeout (> 4.9 s); with two "
        "slots they finish in about 5 s",
}
"""Tests that assume one evaluation at a time, with why; they run with one slot."""

FOR_TIME: dict[str, str] = {
    "test_fmin.test_quadratic1_rand": "500 evaluations",
    "test_fmin.test_loss_threshold": "about 780 evaluations before the threshold is met",
    "test_pchoice.TestSimpleFMin.test_random": "150 evaluations of a test case's method: each "
                                               "worker imports the test modules to unpickle it",
    "test_pchoice.TestSimpleFMin.test_tpe": "100 evaluations of a test case's method",
    "test_pchoice.TestSimpleFMin.test_anneal": "100 evaluations of a test case's method",
}
"""Tests left out of a default run for time (each evaluation starts a worker process)."""

_MODULES = {"test_fmin": fmin_tests, "test_pchoice": pchoice_tests}


def _names() -> list[str]:
    found: list[str] = []
    for short, module in _MODULES.items():
        for name, obj in vars(module).items():
            if name.startswith("test_") and callable(obj):
                found.append(f"{short}.{name}")
            elif isinstance(obj, type) and issubclass(obj, unittest.TestCase):
                found.extend(f"{short}.{name}.{method}" for method in
                             unittest.TestLoader().getTestCaseNames(obj))
    return sorted(found)


class _Substitute(HardwareAwareTrials):
    """``HardwareAwareTrials`` built as ``Trials()``, on the executor the fixture provides.

    At module level, so that an objective holding one (a test case's method)
    pickles it by reference.
    """

    make_executor: Callable[[], Any]

    def __init__(self, exp_key: str | None = None, refresh: bool = True) -> None:
        super().__init__(executor=type(self).make_executor(), exp_key=exp_key)


@pytest.fixture
def substitute(
    monkeypatch: pytest.MonkeyPatch, make_executor: Callable[..., Any]
) -> Iterator[Callable[[int], None]]:
    """Replace ``Trials`` (and ``fmin``'s default trials) by ``HardwareAwareTrials``."""

    def install(slots: int) -> None:
        monkeypatch.setattr(_Substitute, "make_executor",
                            staticmethod(lambda: make_executor(cpus(slots))), raising=False)

        def fmin(*args: Any, trials: Any = None, points_to_evaluate: Any = None,
                 **kwargs: Any) -> Any:
            if trials is None:
                trials = (_Substitute() if points_to_evaluate is None
                          else generate_trials_to_calculate(points_to_evaluate))
            return hyperopt_fmin(*args, trials=trials, **kwargs)

        monkeypatch.setattr(base, "Trials", _Substitute)
        for module in _MODULES.values():
            monkeypatch.setattr(module, "Trials", _Substitute)
            monkeypatch.setattr(module, "fmin", fmin)

    yield install


def _run(name: str) -> None:
    short, *path = name.split(".")
    obj: Any = _MODULES[short]
    if len(path) == 2:  # a unittest.TestCase method, called directly (the objective may
        # be one of its methods, so the case must pickle: no TestResult attached)
        case = getattr(obj, path[0])(path[1])
        case.setUp()
        try:
            getattr(case, path[1])()
        finally:
            case.tearDown()
        return
    function = getattr(obj, path[0])
    if path[0] == "test_quadratic1_tpe":  # its default Trials() was built at import
        function(trials=base.Trials())
    else:
        function()


@pytest.mark.parametrize("name", _names())
def test_hyperopt_fmin_suite_with_hardware_aware_trials(
    name: str, substitute: Callable[[int], None]
) -> None:
    if name in FOR_TIME and os.environ.get("HWAWARE_HYPEROPT_SUITE") != "full":
        pytest.skip(f"left out for time: {FOR_TIME[name]} (HWAWARE_HYPEROPT_SUITE=full runs it)")
    substitute(1 if name in SEQUENTIAL else SLOTS)
    _run(name)


def test_the_lists_name_existing_tests() -> None:
    assert set(SEQUENTIAL) | set(FOR_TIME) <= set(_names())
    assert "test_fmin.test_early_stop" in _names()
