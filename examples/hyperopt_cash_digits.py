"""CASH on the digits data set with hyperopt: model family and its hyperparameters at once.

Each model family (SVM with an RBF or polynomial kernel, random forest, k-NN,
logistic regression) is one ``hp.choice`` branch; ``hwaware_hyperopt.suggest``
picks the branch by complexity and device, TPE tunes inside it, and
``HardwareAwareTrials`` runs the evaluations in parallel, each in a process
pinned to one device slot of this machine.

    python examples/hyperopt_cash_digits.py --max-evals 20
    HWAWARE_DEVICES=examples/devices/mixed-node-sim.toml python examples/hyperopt_cash_digits.py
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

import numpy as np
from hwaware_hyperopt import MISC_KEY, HardwareAwareTrials, suggest
from hyperopt import fmin, hp

SPACE = hp.choice("model", [
    {"type": "svm", "C": hp.loguniform("svm_C", -3, 5), "kernel": hp.choice("kernel", [
        {"name": "rbf", "gamma": hp.loguniform("rbf_gamma", -8, 1)},
        {"name": "poly", "degree": hp.quniform("poly_degree", 2, 5, 1),
         "coef0": hp.uniform("poly_coef0", 0, 1)},
    ])},
    {"type": "rf", "n_estimators": hp.quniform("rf_trees", 10, 200, 10),
     "max_depth": hp.quniform("rf_depth", 2, 20, 1)},
    {"type": "knn", "n_neighbors": hp.quniform("knn_k", 1, 30, 1)},
    {"type": "logreg", "C": hp.loguniform("lr_C", -4, 4)},
])


def build(point: dict[str, Any]) -> Any:
    """The scikit-learn estimator a point of ``SPACE`` describes."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    if point["type"] == "svm":
        kernel = point["kernel"]
        if kernel["name"] == "rbf":
            return SVC(C=point["C"], kernel="rbf", gamma=kernel["gamma"])
        return SVC(C=point["C"], kernel="poly", degree=int(kernel["degree"]),
                   coef0=kernel["coef0"])
    if point["type"] == "rf":
        return RandomForestClassifier(n_estimators=int(point["n_estimators"]),
                                      max_depth=int(point["max_depth"]), random_state=0)
    if point["type"] == "knn":
        return KNeighborsClassifier(n_neighbors=int(point["n_neighbors"]))
    return LogisticRegression(C=point["C"], max_iter=500)


def objective(point: dict[str, Any]) -> float:
    """1 - mean 3-fold cross-validated accuracy (runs in a pinned worker process)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score

    x, y = load_digits(return_X_y=True)
    return 1.0 - float(cross_val_score(build(point), x / 16.0, y, cv=3).mean())


def main(argv: list[str] | None = None) -> int:
    """Run the search and print the best configuration and where trials ran."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-evals", type=int, default=16, help="evaluations (default 16)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    trials = HardwareAwareTrials()
    best = fmin(objective, SPACE, algo=suggest, max_evals=args.max_evals, trials=trials,
                rstate=np.random.default_rng(args.seed), show_progressbar=False)
    print(f"best loss {min(trials.losses()):.4f} with {best}")
    print("trials per branch:", dict(Counter(
        t["misc"][MISC_KEY]["subspace"] for t in trials.trials)))
    print("trials per device:", dict(Counter(
        t["misc"][MISC_KEY]["device_id"] for t in trials.trials)))
    trials.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
