"""The demo's problem: CASH on scikit-learn's bundled digits, and the demo's data files.

:class:`DigitsCash` is an Optuna objective choosing a model family and its
hyperparameters at once (SVM with a linear, RBF or polynomial kernel, random
forest, k-NN, logistic regression); each fit takes well under a second on one
core. :func:`data_file` finds the measured table and the 150-slot device file.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hwaware_plugins
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.reporting import FAIL_REASON

BRANCH_PARAMS: tuple[str, ...] = ("model", "svm_kernel")
FAMILIES: dict[str, str] = {"svm": "svm", "random_forest": "rf", "knn": "knn", "logreg": "logreg"}


def family_of(branch: Mapping[str, Any]) -> str | None:
    """The ``[device.speedup]`` family of a subspace's branch values (``None`` if unknown)."""
    return FAMILIES.get(str(branch.get("model")))


def data_file(subdir: str, name: str) -> Path:
    """A demo data file: the repository's ``benchmarks/<subdir>/<name>`` when running from a
    checkout, else the copy shipped as package data in ``hwaware_plugins/data/<name>``.

    :raises ConfigError: neither exists (a broken installation).
    """
    package = Path(hwaware_plugins.__file__).resolve().parent
    for candidate in (package.parent / "benchmarks" / subdir / name, package / "data" / name):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"demo data file {name} is missing; reinstall hwaware-plugins")


class DigitsCash:
    """An Optuna objective: 1 - validation accuracy of the chosen model on digits.

    The data (1797 8x8 images, bundled with scikit-learn) is split 70/30
    (stratified, ``seed``) and standardised once, at the first call.
    Thread-safe (``study.optimize(n_jobs=...)``). A fit that raises stores the
    exception's type as the trial's ``hwaware:fail_reason`` and re-raises.
    """

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self._lock = threading.Lock()
        self._data: tuple[Any, Any, Any, Any] | None = None

    def data(self) -> tuple[Any, Any, Any, Any]:
        """``(x_train, x_valid, y_train, y_valid)``, loaded once."""
        with self._lock:
            if self._data is None:
                from sklearn.datasets import load_digits
                from sklearn.model_selection import train_test_split
                from sklearn.preprocessing import StandardScaler

                x, y = load_digits(return_X_y=True)
                xt, xv, yt, yv = train_test_split(
                    x, y, test_size=0.3, random_state=self.seed, stratify=y
                )
                scaler = StandardScaler().fit(xt)
                self._data = (scaler.transform(xt), scaler.transform(xv), yt, yv)
            return self._data

    def __call__(self, trial: Any) -> float:
        """Sample a model from ``trial``, fit it, return the validation error."""
        estimator = build_estimator(trial, seed=self.seed)
        xt, xv, yt, yv = self.data()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning of capped solvers
                estimator.fit(xt, yt)
                return 1.0 - float(estimator.score(xv, yv))
        except Exception as exc:
            trial.set_user_attr(FAIL_REASON, type(exc).__name__)
            raise


def build_estimator(trial: Any, *, seed: int) -> Any:
    """The scikit-learn estimator the trial samples (small models: each fit < 1 s)."""
    model = trial.suggest_categorical("model", list(FAMILIES))
    if model == "svm":
        from sklearn.svm import SVC

        kernel = trial.suggest_categorical("svm_kernel", ["linear", "rbf", "poly"])
        kwargs: dict[str, Any] = {"C": trial.suggest_float("svm_C", 1e-3, 1e3, log=True)}
        if kernel != "linear":
            kwargs["gamma"] = trial.suggest_float("svm_gamma", 1e-5, 1.0, log=True)
        if kernel == "poly":
            kwargs["degree"] = trial.suggest_int("svm_degree", 2, 4)
            kwargs["coef0"] = trial.suggest_float("svm_coef0", 0.0, 2.0)
        return SVC(kernel=kernel, max_iter=100_000, **kwargs)
    if model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=trial.suggest_int("rf_n_estimators", 10, 80, log=True),
            max_depth=trial.suggest_int("rf_max_depth", 2, 24),
            max_features=trial.suggest_float("rf_max_features", 0.05, 1.0),
            n_jobs=1,
            random_state=seed,
        )
    if model == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(
            n_neighbors=trial.suggest_int("knn_n_neighbors", 1, 40),
            weights=trial.suggest_categorical("knn_weights", ["uniform", "distance"]),
        )
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=trial.suggest_float("logreg_C", 1e-4, 1e3, log=True), max_iter=200)
