"""CASH on the digits data set with Optuna: model family and its hyperparameters at once.

The objective is an ordinary define-by-run Optuna objective with a conditional
space: ``model`` picks SVM (``kernel`` rbf, poly or linear), random forest,
k-NN or logistic regression, and each family asks for its own parameters.
Only the sampler changes: ``HardwareAwareSampler`` leases a device slot per
trial, lets the ``hwaware`` scheduler pick the subspace (one combination of
``model``/``kernel``) for that device's class by complexity and the runtimes
and losses seen so far, and lets TPE sample inside it. One Optuna thread runs
per device slot (``n_jobs``).

    python examples/optuna_cash_digits.py --trials 30
    python examples/optuna_cash_digits.py --devices examples/devices/mixed-node-sim.toml
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

import optuna
from hwaware_optuna import HardwareAwareSampler

from hwaware_plugins.hardware import resolve_devices

PLACEMENT_KEYS = ("hwaware:device_id", "hwaware:device_class", "hwaware:host",
                  "hwaware:subspace", "hwaware:runtime_s")


def build(trial: optuna.trial.Trial) -> Any:
    """Ask the trial for a model family and its hyperparameters; the scikit-learn estimator."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    model = trial.suggest_categorical("model", ["svm", "rf", "knn", "logreg"])
    if model == "svm":
        c = trial.suggest_float("svm_C", 1e-2, 1e2, log=True)
        kernel = trial.suggest_categorical("kernel", ["rbf", "poly", "linear"])
        if kernel == "rbf":
            return SVC(C=c, kernel="rbf", gamma=trial.suggest_float("rbf_gamma", 1e-4, 1.0,
                                                                    log=True))
        if kernel == "poly":
            return SVC(C=c, kernel="poly", degree=trial.suggest_int("poly_degree", 2, 5),
                       coef0=trial.suggest_float("poly_coef0", 0.0, 1.0))
        return SVC(C=c, kernel="linear")
    if model == "rf":
        return RandomForestClassifier(n_estimators=trial.suggest_int("rf_trees", 10, 150, step=10),
                                      max_depth=trial.suggest_int("rf_depth", 2, 20),
                                      random_state=0, n_jobs=1)
    if model == "knn":
        return KNeighborsClassifier(n_neighbors=trial.suggest_int("knn_k", 1, 30))
    return LogisticRegression(C=trial.suggest_float("lr_C", 1e-3, 1e2, log=True), max_iter=300)


def objective(trial: optuna.trial.Trial) -> float:
    """1 - mean 3-fold cross-validated accuracy of the model the trial describes."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score

    x, y = load_digits(return_X_y=True)
    return 1.0 - float(cross_val_score(build(trial), x / 16.0, y, cv=3).mean())


def subspace_summary(study: optuna.Study) -> str:
    """One line per subspace: trials, best loss and mean runtime of its completed trials."""
    groups: dict[str, list[optuna.trial.FrozenTrial]] = defaultdict(list)
    for trial in study.trials:
        groups[str(trial.user_attrs.get("hwaware:subspace", "?"))].append(trial)
    lines = [f"{'subspace':32s} {'trials':>6s} {'best loss':>9s} {'mean s':>7s}"]
    for subspace, trials in sorted(groups.items()):
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = min((t.value for t in done if t.value is not None), default=float("nan"))
        runtimes = [float(t.user_attrs.get("hwaware:runtime_s", 0.0)) for t in done]
        mean = sum(runtimes) / len(runtimes) if runtimes else float("nan")
        lines.append(f"{subspace:32s} {len(trials):6d} {best:9.4f} {mean:7.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the study; print the per-subspace summary and the best trial with its placement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="trials (default 30)")
    parser.add_argument("--devices", default=None,
                        help="declared-device TOML file (default: probe this machine)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    devices = resolve_devices(args.devices)
    n_jobs = sum(max(1, device.slots) for device in devices)
    sampler = HardwareAwareSampler(devices=devices, seed=args.seed)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=args.trials, n_jobs=n_jobs)
    print(f"{len(study.trials)} trials on {len(devices)} devices, {n_jobs} slots in parallel")
    print(subspace_summary(study))
    best = study.best_trial
    print(f"best trial #{best.number}: loss {best.value:.4f} with {best.params}")
    for key in PLACEMENT_KEYS:
        print(f"  {key} = {best.user_attrs.get(key)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
