"""hyperopt-sklearn's ``HyperoptEstimator`` fits with ``HardwareAwareTrials`` in thread mode.

``HyperoptEstimator`` keeps its best model on itself from inside the objective,
so its evaluations must run in the coordinator: ``executor="thread"``. The
package pins its own hyperopt, numpy and scikit-learn, so it is not part of the
``test`` extra; ``.ci/run`` installs it in an environment of its own and sets
``HWAWARE_REQUIRE_HPSKLEARN=1`` so that a missing package fails instead of skipping.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

if os.environ.get("HWAWARE_REQUIRE_HPSKLEARN") == "1":
    import hpsklearn
else:
    hpsklearn = pytest.importorskip("hpsklearn")

from hwaware_hyperopt import MISC_KEY, HardwareAwareTrials
from hyperopt import tpe
from sklearn.datasets import load_digits

from .conftest import cpus

MAX_EVALS = 6


def _estimator() -> Any:
    return hpsklearn.HyperoptEstimator(
        classifier=hpsklearn.k_neighbors_classifier("knn"),
        algo=tpe.suggest,
        max_evals=MAX_EVALS,
        trial_timeout=120,
        seed=0,
    )


def _digits() -> tuple[Any, Any, Any, Any]:
    features, labels = load_digits(return_X_y=True)
    return features[:1000], labels[:1000], features[1000:], labels[1000:]


def test_fits_with_plain_trials() -> None:
    train_x, train_y, test_x, test_y = _digits()
    estimator = _estimator()
    estimator.fit(train_x, train_y)
    assert len(estimator.trials.trials) == MAX_EVALS
    assert estimator.score(test_x, test_y) > 0.8


def test_fits_with_hardware_aware_trials_in_thread_mode() -> None:
    train_x, train_y, test_x, test_y = _digits()
    estimator = _estimator()
    trials = HardwareAwareTrials(devices=cpus(2), executor="thread")
    estimator.trials = trials
    try:
        estimator.fit(train_x, train_y, warm_start=True)
    finally:
        trials.close()
    assert isinstance(estimator.trials, HardwareAwareTrials)
    assert len(trials.trials) == MAX_EVALS
    assert all(t["result"]["status"] == "ok" for t in trials.trials)
    placed = {t["misc"][MISC_KEY]["device_id"] for t in trials.trials}
    assert placed and placed <= {"cpu:0", "cpu:1"}
    assert estimator.best_model()["learner"] is not None  # kept by the objective, in-process
    assert estimator.score(test_x, test_y) > 0.8
