"""Optuna's own sampler test suites, run against HardwareAwareSampler over five base samplers.

``optuna.testing.pytest_samplers`` ships the cases Optuna runs on its own samplers.
Each case gets a fresh HardwareAwareSampler (two declared GPUs, a private lease
folder) wrapping a fresh base sampler, so every contract the suites check
(value types and ranges, steps, conditional and dynamic spaces, NaN values,
``PartialFixedSampler``, ``n_jobs=2``, multi-objective sampling) holds through
our sampler as it does for the base alone.

What runs, per base, and why the rest does not:

- ``BasicSamplerTestCase``: every base.
- ``RelativeSamplerTestCase``: the bases with a relative sampler (TPE with
  ``multivariate=True``, CMA-ES, GP). Random and NSGA-II sample independently
  only (their ``sample_relative`` returns ``{}`` by design), so the suite's
  relative cases do not apply to them. For GP only a selection runs, for time:
  every relative sample fits a Gaussian process and optimises its acquisition
  (with no start-up trials, as the suite needs), so the 36 numerical pairs
  would take minutes; one pair (log float with stepped int), one mixed case
  and both ``n_jobs`` cases run. Left out for time (measured on two busy
  cores): the other 35 pairs (stepped float with log int alone took 229 s),
  the other four mixed cases and the all-categorical case (61 s).
- ``MultiObjectiveSamplerTestCase``: the bases that support several objectives
  (Random, TPE, NSGA-II, GP). CMA-ES is single-objective only.
- ``SingleOnlySamplerTestCase``: not run. It expects ``ValueError`` from
  sampling a multi-objective study, but CMA-ES (the one single-objective base
  here) falls back to its independent sampler with a warning instead of raising,
  with or without our sampler around it.

Cost: 487 cases, most well under a second; the GP ones cost most. The CMA-ES cases need the optional
``cmaes`` package (in the ``test`` extra) and are skipped without it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from hwaware_optuna import HardwareAwareSampler
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.samplers import (
    BaseSampler,
    CmaEsSampler,
    GPSampler,
    NSGAIISampler,
    RandomSampler,
    TPESampler,
)
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
)

from ._helpers import gpu

Factory = Callable[[], BaseSampler]


def _cmaes() -> BaseSampler:
    pytest.importorskip("cmaes")
    return CmaEsSampler(seed=0)


def _quiet(make: Factory) -> Factory:
    """Build without Optuna's ExperimentalWarning (GPSampler, multivariate TPE)."""

    def build() -> BaseSampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return make()

    return build


BASES: dict[str, Factory] = {
    "random": lambda: RandomSampler(seed=0),
    "tpe": _quiet(lambda: TPESampler(seed=0, multivariate=True)),
    "cmaes": _cmaes,
    "nsga2": lambda: NSGAIISampler(seed=0),
    "gp": _quiet(lambda: GPSampler(seed=0)),
}


RELATIVE_BASES: dict[str, Factory] = {
    # As Optuna's own relative cases: no start-up trials, so the first sample is relative.
    "tpe": _quiet(lambda: TPESampler(seed=0, multivariate=True, n_startup_trials=0)),
    "cmaes": lambda: (pytest.importorskip("cmaes"), CmaEsSampler(seed=0, n_startup_trials=0))[1],
    "gp": _quiet(lambda: GPSampler(seed=0, n_startup_trials=0)),
}


def _wrapped(base: str, tmp_path: Path, bases: dict[str, Factory] = BASES) -> Factory:
    make_base = bases[base]

    def make() -> BaseSampler:
        return HardwareAwareSampler(
            make_base(), devices=[gpu(0), gpu(1)], seed=0, state_dir=tmp_path / "pool"
        )

    return make


class TestBasicSuite(BasicSamplerTestCase):
    """Optuna's basic cases, over every base."""

    @pytest.fixture(params=["random", "tpe", "cmaes", "nsga2", "gp"])
    def sampler(self, request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
        return _wrapped(request.param, tmp_path)


class TestRelativeSuite(RelativeSamplerTestCase):
    """Optuna's relative-sampling cases, over TPE (multivariate) and CMA-ES."""

    @pytest.fixture(params=["tpe", "cmaes"])
    def sampler(self, request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
        return _wrapped(request.param, tmp_path, RELATIVE_BASES)


class TestRelativeSuiteGP(RelativeSamplerTestCase):
    """Optuna's relative-sampling cases over GP: a selection (see the module doc)."""

    @pytest.fixture
    def sampler(self, tmp_path: Path) -> Factory:
        return _wrapped("gp", tmp_path, RELATIVE_BASES)

    @pytest.mark.parametrize(
        ("x_distribution", "y_distribution"),
        [(FloatDistribution(1e-7, 1.0, log=True), IntDistribution(3, 9, step=2))],
    )
    def test_sample_relative_numerical(
        self,
        sampler: Factory,
        x_distribution: BaseDistribution,
        y_distribution: BaseDistribution,
    ) -> None:
        super().test_sample_relative_numerical(sampler, x_distribution, y_distribution)

    @pytest.mark.parametrize("x_distribution", [FloatDistribution(-1.0, 1.0)])
    def test_sample_relative_mixed(
        self, sampler: Factory, x_distribution: BaseDistribution
    ) -> None:
        super().test_sample_relative_mixed(sampler, x_distribution)

    @pytest.mark.skip(reason="left out for time: about a minute per run; see the module doc")
    def test_sample_relative_categorical(self, sampler: Factory) -> None:
        super().test_sample_relative_categorical(sampler)


class TestMultiObjectiveSuite(MultiObjectiveSamplerTestCase):
    """Optuna's multi-objective cases, over the bases that support several objectives."""

    @pytest.fixture(params=["random", "tpe", "nsga2", "gp"])
    def sampler(self, request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
        return _wrapped(request.param, tmp_path)
