"""Measure a real CASH problem on scikit-learn's digits data and write one CSV row per trial.

Eight subspaces (four SVM kernels, random forest, k-nearest neighbours, logistic regression
and a small torch MLP) are each sampled at random from fixed ranges; every configuration is
fitted on a fixed, stratified 70/30 split and scored on the validation part. Each row holds
the configuration, ``loss = 1 - validation accuracy``, the CPU time of fit + predict
(``runtime_s``, single-threaded numerical libraries) and the wall time (``wall_s``).

The table feeds the scheduler simulator (DESIGN.md section 8). See benchmarks/data/README.md
for the exact command, ranges, caps and a summary of the committed table.

Configuration ``index`` of subspace ``s`` is drawn from ``numpy.random.default_rng((seed,
position of s, index))``, so a configuration never depends on which others ran before it:
the script resumes from its partial file (``<out stem>.partial.csv``) by skipping the
``(subspace, index)`` pairs already there, and the complete table is only written to
``--out`` (through a temporary file and a rename) once every pair is present and valid.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/make_cash_table.py --per-subspace 200
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules below

import make_suite_tables as suite
from cash_families import Dim, Outcome

Params = dict[str, float | int | str]

SPLIT_SEED = 0
"""Seed of the train/validation split; fixed so tables made with other ``--seed`` compare."""
VALIDATION_FRACTION = 0.3
SVM_MAX_ITER = 200_000
"""libsvm iteration cap per one-vs-one sub-problem (stops pathological C/gamma/degree)."""
LOGREG_MAX_ITER = 500
"""Solver iteration cap of logistic regression."""

FAMILY = {
    "svm_linear": "svm",
    "svm_rbf": "svm",
    "svm_poly": "svm",
    "svm_sigmoid": "svm",
    "random_forest": "rf",
    "knn": "knn",
    "logreg": "logreg",
    "mlp": "mlp",
}
SUBSPACES = tuple(FAMILY)
PARAM_COLUMNS = (
    "svm_C", "svm_gamma", "svm_degree", "svm_coef0",
    "rf_n_estimators", "rf_max_depth", "rf_max_features", "rf_min_samples_split",
    "rf_min_samples_leaf", "rf_criterion", "rf_bootstrap",
    "knn_n_neighbors", "knn_weights", "knn_p",
    "logreg_C", "logreg_penalty", "logreg_solver", "logreg_l1_ratio",
    "mlp_hidden", "mlp_layers", "mlp_lr", "mlp_batch_size", "mlp_epochs", "mlp_weight_decay",
)  # fmt: skip
COLUMNS = (
    "subspace", "family", "index", "seed", *PARAM_COLUMNS,
    "capped", "loss", "runtime_s", "wall_s",
)  # fmt: skip


# ---------------------------------------------------------------- sampling (pure, seeded)


def _c(low: float = 1e-3, high: float = 1e3) -> Dim:
    return Dim("log", low, high)


# Draw order matters (it fixes the random stream): add dimensions at the end only.
SPACE: Mapping[str, Mapping[str, Dim]] = {
    "svm_linear": {"svm_C": _c()},
    "svm_rbf": {"svm_C": _c(), "svm_gamma": Dim("log", 1e-5, 1e1)},
    "svm_poly": {"svm_C": _c(), "svm_gamma": Dim("log", 1e-4, 1e-1),
                 "svm_degree": Dim("int", 2, 5), "svm_coef0": Dim("uniform", 0.0, 2.0)},
    "svm_sigmoid": {"svm_C": _c(), "svm_gamma": Dim("log", 1e-5, 1e-1),
                    "svm_coef0": Dim("uniform", -1.0, 1.0)},
    "random_forest": {
        "rf_n_estimators": Dim("log_int", 10, 300), "rf_max_depth": Dim("int", 2, 32),
        "rf_max_features": Dim("uniform", 0.05, 1.0), "rf_min_samples_split": Dim("int", 2, 20),
        "rf_min_samples_leaf": Dim("int", 1, 10),
        "rf_criterion": Dim("choice", options=("gini", "entropy")),
        "rf_bootstrap": Dim("int", 0, 1),
    },
    "knn": {"knn_n_neighbors": Dim("int", 1, 50),
            "knn_weights": Dim("choice", options=("uniform", "distance")),
            "knn_p": Dim("int", 1, 3)},
    # (penalty, solver) pairs valid for 10 classes (liblinear is binary-only); split below.
    "logreg": {
        "logreg_penalty_solver": Dim("choice", options=(
            ("l2", "lbfgs"), ("l2", "newton-cg"), ("l2", "sag"), ("l2", "saga"),
            ("l1", "saga"), ("elasticnet", "saga"))),
        "logreg_C": _c(1e-4, 1e3),
    },
    "mlp": {
        "mlp_hidden": Dim("log_int", 16, 256), "mlp_layers": Dim("int", 1, 3),
        "mlp_lr": Dim("log", 1e-4, 1e-1),
        "mlp_batch_size": Dim("choice", options=(16, 32, 64, 128, 256)),
        "mlp_epochs": Dim("int", 2, 25), "mlp_weight_decay": Dim("log", 1e-6, 1e-2),
    },
}  # fmt: skip
LOGREG_L1_RATIO = Dim("uniform", 0.05, 0.95)
"""Drawn only for the elasticnet penalty; l2 means 0 and l1 means 1."""


def sample_config(seed: int, subspace: str, index: int) -> tuple[Params, int]:
    """Draw configuration ``index`` of ``subspace``; returns ``(params, model_seed)``.

    Depends only on ``(seed, subspace, index)``; costs microseconds.
    """
    rng = np.random.default_rng((seed, SUBSPACES.index(subspace), index))
    params: Params = {column: dim.draw(rng) for column, dim in SPACE[subspace].items()}
    if subspace == "logreg":
        penalty, solver = cast(tuple[str, str], params.pop("logreg_penalty_solver"))
        ratio = {"l2": 0.0, "l1": 1.0}.get(penalty)
        l1_ratio = LOGREG_L1_RATIO.draw(rng) if ratio is None else ratio
        params |= {"logreg_penalty": penalty, "logreg_solver": solver, "logreg_l1_ratio": l1_ratio}
    return params, int(rng.integers(2**31 - 1))


# ---------------------------------------------------------------- models


@dataclass(frozen=True)
class Split:
    """Standardised digits features (fitted on train only) and labels."""

    x_train: np.ndarray[Any, np.dtype[np.float64]]
    y_train: np.ndarray[Any, np.dtype[np.int64]]
    x_val: np.ndarray[Any, np.dtype[np.float64]]
    y_val: np.ndarray[Any, np.dtype[np.int64]]


def load_split() -> Split:
    """The fixed stratified 70/30 digits split, standardised outside the timed region."""
    x, y = load_digits(return_X_y=True)
    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y, test_size=VALIDATION_FRACTION, stratify=y, random_state=SPLIT_SEED
    )
    scaler = StandardScaler().fit(x_tr)
    return Split(scaler.transform(x_tr), y_tr.astype(np.int64), scaler.transform(x_va),
                 y_va.astype(np.int64))  # fmt: skip


class TorchMLP:
    """A ReLU multilayer perceptron trained with Adam on CPU; ``fit``/``predict`` like sklearn."""

    def __init__(self, params: Params, *, seed: int) -> None:
        self.params = params
        self.seed = seed

    def fit(self, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> TorchMLP:
        p = self.params
        torch.manual_seed(self.seed)
        width, layers = int(p["mlp_hidden"]), int(p["mlp_layers"])
        blocks: list[torch.nn.Module] = []
        fan_in = x.shape[1]
        for _ in range(layers):
            blocks += [torch.nn.Linear(fan_in, width), torch.nn.ReLU()]
            fan_in = width
        self.net_ = torch.nn.Sequential(*blocks, torch.nn.Linear(fan_in, int(y.max()) + 1))
        opt = torch.optim.Adam(self.net_.parameters(), lr=float(p["mlp_lr"]),
                               weight_decay=float(p["mlp_weight_decay"]))  # fmt: skip
        xt = torch.as_tensor(x, dtype=torch.float32)
        yt = torch.as_tensor(y, dtype=torch.long)
        gen = torch.Generator().manual_seed(self.seed)
        batch = int(p["mlp_batch_size"])
        for _ in range(int(p["mlp_epochs"])):
            order = torch.randperm(len(xt), generator=gen)
            for start in range(0, len(xt), batch):
                rows = order[start : start + batch]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(self.net_(xt[rows]), yt[rows])
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        return self

    def predict(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        with torch.no_grad():
            out = self.net_(torch.as_tensor(x, dtype=torch.float32))
        # A diverged network gives NaN logits; argmax then predicts one class (a real, bad loss).
        return np.asarray(out.argmax(dim=1).numpy())


def make_model(subspace: str, params: Params, model_seed: int) -> Any:
    """An unfitted estimator for one configuration (caps from the module constants)."""
    p = params
    if subspace.startswith("svm_"):
        return SVC(kernel=subspace.removeprefix("svm_"), C=p["svm_C"],
                   gamma=p.get("svm_gamma", "scale"), degree=int(p.get("svm_degree", 3)),
                   coef0=float(p.get("svm_coef0", 0.0)), max_iter=SVM_MAX_ITER)  # fmt: skip
    if subspace == "random_forest":
        return RandomForestClassifier(
            n_estimators=p["rf_n_estimators"], max_depth=p["rf_max_depth"],
            max_features=p["rf_max_features"], min_samples_split=p["rf_min_samples_split"],
            min_samples_leaf=p["rf_min_samples_leaf"], criterion=p["rf_criterion"],
            bootstrap=bool(p["rf_bootstrap"]), random_state=model_seed, n_jobs=1,
        )  # fmt: skip
    if subspace == "knn":
        return KNeighborsClassifier(n_neighbors=p["knn_n_neighbors"], weights=p["knn_weights"],
                                    p=p["knn_p"], n_jobs=1)  # fmt: skip
    if subspace == "logreg":
        return LogisticRegression(C=p["logreg_C"], l1_ratio=p["logreg_l1_ratio"],
                                  solver=p["logreg_solver"], max_iter=LOGREG_MAX_ITER,
                                  random_state=model_seed)  # fmt: skip
    if subspace == "mlp":
        return TorchMLP(params, seed=model_seed)
    raise ValueError(f"unknown subspace {subspace!r}; choose from {', '.join(SUBSPACES)}")


def evaluate(subspace: str, params: Params, model_seed: int, split: Split) -> Outcome:
    """Fit on train and score on validation; times fit + predict (CPU and wall)."""
    model = make_model(subspace, params, model_seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        model.fit(split.x_train, split.y_train)
        predicted = model.predict(split.x_val)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    has_cap = subspace.startswith("svm_") or subspace == "logreg"
    capped = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    accuracy = float(np.mean(predicted == split.y_val))
    return Outcome(1.0 - accuracy, cpu, wall, capped if has_cap else None)


# ---------------------------------------------------------------- table I/O and driver


class _DigitsTable:
    """This table for the shared driver in make_suite_tables.py (same CSV, same resumption)."""

    name = "digits"
    columns = COLUMNS
    order = SUBSPACES

    def family(self, subspace: str) -> str:
        return FAMILY[subspace]

    def sample(self, seed: int, subspace: str, index: int) -> tuple[Params, int]:
        return sample_config(seed, subspace, index)

    def prepare(self) -> Split:
        return load_split()

    def measure(self, subspace: str, params: Mapping[str, Any], model_seed: int, split: Split
                ) -> Outcome:  # fmt: skip
        return evaluate(subspace, dict(params), model_seed, split)


DIGITS = _DigitsTable()
partial_path = suite.partial_path
"""Where rows accumulate until the table is complete (``<out stem>.partial.csv``)."""


def run(*, out: Path, per_subspace: int, seed: int, subspaces: Sequence[str]) -> int:
    """Evaluate every missing configuration, then write ``out``; returns the rows evaluated.

    Resumes from the partial file (:func:`partial_path`), else extends an existing ``out``;
    the partial file is removed once ``out`` is complete. Costs about half a CPU-second per
    configuration on average. Two runs must not share one ``out`` at the same time.
    """
    return suite.run(DIGITS, out=out, per_subspace=per_subspace, seed=seed, subspaces=subspaces)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; exit status 2 on bad arguments or a foreign partial file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-subspace", type=int, default=200, help="configurations each")
    parser.add_argument("--seed", type=int, default=0, help="seed of configuration sampling")
    default_out = Path(__file__).parent / "data" / "digits_cash.csv"
    parser.add_argument("--out", type=Path, default=default_out,
                        help="final CSV (partial rows go next to it)")  # fmt: skip
    parser.add_argument("--subspaces", default=",".join(SUBSPACES),
                        help="comma-separated subset of: " + ", ".join(SUBSPACES))  # fmt: skip
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.subspaces.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SUBSPACES))
    if unknown or not chosen:
        parser.error(f"unknown subspaces {unknown}; choose from {', '.join(SUBSPACES)}")
    if args.per_subspace < 1:
        parser.error("--per-subspace must be at least 1")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        run(out=args.out, per_subspace=args.per_subspace, seed=args.seed, subspaces=chosen)
    except ValueError as exc:
        print(f"make_cash_table: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
