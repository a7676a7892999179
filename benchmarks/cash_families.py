"""The model families of the suite's measured CASH tables, and one call that runs a configuration.

Two tables are defined here (see benchmarks/data/README.md for ranges and summaries):

- ``torch_digits``: torch MLPs (Adam or SGD, one or three hidden layers) and small CNNs (one
  or two conv layers on the 8x8 image) against scikit-learn SVMs and k-nearest neighbours, on
  the same digits split as ``digits_cash.csv``;
- ``synthetic``: a generated 4-class tabular problem (``make_classification``, fixed seed)
  with histogram gradient boosting, SVMs, random forests, extra trees, k-nearest neighbours,
  logistic regression and a torch MLP.

:func:`evaluate` fits one configuration on a given torch device and scores it; the table
script (make_suite_tables.py) calls it on the CPU, and a GPU timing script can call it with
``device="cuda"`` to measure the torch families' real speedups. Nothing here writes files.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

Params = dict[str, Any]
Rng = np.random.Generator
Array = np.ndarray[Any, Any]

SPLIT_SEED = 0
"""Seed of every train/validation split (the same as make_cash_table.py's)."""
VALIDATION_FRACTION = 0.3
SVM_MAX_ITER = 200_000
"""libsvm iteration cap per one-vs-one sub-problem."""
LOGREG_MAX_ITER = 300
"""Solver iteration cap of logistic regression."""
CAPPED_FAMILIES = frozenset({"svm", "logreg"})
"""Families whose solver has an iteration cap; their rows say whether it was reached."""


# ---------------------------------------------------------------- sampling (pure, seeded)


@dataclass(frozen=True)
class Dim:
    """One sampled parameter; ``kind`` is log, uniform, int, log_int (bounds inclusive) or choice.

    Floats are rounded to 4 significant digits before use, so a CSV holds the exact value fitted.
    """

    kind: str
    low: float = 0.0
    high: float = 0.0
    options: tuple[Any, ...] = ()

    def draw(self, rng: Rng) -> Any:
        """One value from this dimension; costs one draw from ``rng``."""
        if self.kind == "choice":
            return self.options[int(rng.integers(len(self.options)))]
        if self.kind == "int":
            return int(rng.integers(int(self.low), int(self.high) + 1))
        if self.kind == "log_int":
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
            return min(int(self.high), int(value))
        if self.kind == "log":
            return float(f"{math.exp(rng.uniform(math.log(self.low), math.log(self.high))):.4g}")
        return float(f"{rng.uniform(self.low, self.high):.4g}")


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Split:
    """Standardised features (scaler fitted on train only) and labels of one dataset.

    ``image_shape`` is the (channels, height, width) a row reshapes to, for the CNNs.
    """

    x_train: Array
    y_train: Array
    x_val: Array
    y_val: Array
    image_shape: tuple[int, int, int] | None = None


def _split(x: Array, y: Array, image_shape: tuple[int, int, int] | None = None) -> Split:
    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y, test_size=VALIDATION_FRACTION, stratify=y, random_state=SPLIT_SEED
    )
    scaler = StandardScaler().fit(x_tr)
    return Split(scaler.transform(x_tr), np.asarray(y_tr, dtype=np.int64),
                 scaler.transform(x_va), np.asarray(y_va, dtype=np.int64),
                 image_shape)  # fmt: skip


def digits_split() -> Split:
    """scikit-learn's digits (1797 8x8 images, 10 classes), the fixed stratified 70/30 split."""
    x, y = load_digits(return_X_y=True)
    return _split(x, y, (1, 8, 8))


SYNTHETIC = {
    "n_samples": 2400, "n_features": 24, "n_informative": 10, "n_redundant": 6,
    "n_classes": 4, "n_clusters_per_class": 2, "class_sep": 1.0, "flip_y": 0.01,
    "random_state": 0,
}  # fmt: skip
"""Arguments of ``make_classification`` for the synthetic table (fixed, no download)."""


def synthetic_split() -> Split:
    """The generated 4-class problem of :data:`SYNTHETIC`, stratified 70/30 (1680 / 720 rows)."""
    x, y = make_classification(**SYNTHETIC)
    return _split(x, y)


# ---------------------------------------------------------------- torch models


class TorchNet:
    """A torch classifier (MLP or small CNN) with a scikit-learn-like ``fit``/``predict``.

    ``arch`` is ``mlp`` (``layers`` hidden ReLU layers of width ``hidden``) or ``cnn``
    (``layers`` 3x3 conv layers of ``channels`` channels, 2x2 max-pool, dropout, a dense ReLU
    layer of width ``dense``); ``optimizer`` is ``adam`` or ``sgd`` (Nesterov-free momentum).
    Trains ``epochs`` passes of shuffled mini-batches with cross-entropy on ``device``.
    """

    def __init__(self, params: Mapping[str, Any], *, seed: int, device: torch.device) -> None:
        self.p = dict(params)
        self.seed = seed
        self.device = device

    def _build(self, n_in: int, n_out: int, image: tuple[int, int, int] | None) -> torch.nn.Module:
        p = self.p
        blocks: list[torch.nn.Module] = []
        if p["arch"] == "cnn":
            if image is None:
                raise ValueError("the cnn family needs image data (Split.image_shape)")
            channels, (c_in, h, w) = int(p["channels"]), image
            for _ in range(int(p["layers"])):
                blocks += [torch.nn.Conv2d(c_in, channels, 3, padding=1), torch.nn.ReLU()]
                c_in = channels
            blocks += [torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                       torch.nn.Dropout(float(p["dropout"])),
                       torch.nn.Linear(channels * (h // 2) * (w // 2), int(p["dense"])),
                       torch.nn.ReLU(), torch.nn.Linear(int(p["dense"]), n_out)]  # fmt: skip
            return torch.nn.Sequential(*blocks)
        fan_in, width = n_in, int(p["hidden"])
        for _ in range(int(p["layers"])):
            blocks += [torch.nn.Linear(fan_in, width), torch.nn.ReLU()]
            fan_in = width
        return torch.nn.Sequential(*blocks, torch.nn.Linear(fan_in, n_out))

    def _tensor(self, x: Array, image: tuple[int, int, int] | None) -> torch.Tensor:
        xt = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        return xt.reshape(-1, *image) if self.p["arch"] == "cnn" and image else xt

    def fit(self, x: Array, y: Array, image: tuple[int, int, int] | None = None) -> TorchNet:
        """Train from scratch; cost grows with epochs x rows x network size."""
        p = self.p
        torch.manual_seed(self.seed)
        self.image = image
        self.net_ = self._build(x.shape[1], int(y.max()) + 1, image).to(self.device)
        lr, decay = float(p["lr"]), float(p["weight_decay"])
        opt: torch.optim.Optimizer
        if p["optimizer"] == "sgd":
            opt = torch.optim.SGD(self.net_.parameters(), lr=lr, weight_decay=decay,
                                  momentum=float(p["momentum"]))  # fmt: skip
        else:
            opt = torch.optim.Adam(self.net_.parameters(), lr=lr, weight_decay=decay)
        xt = self._tensor(x, image)
        yt = torch.as_tensor(y, dtype=torch.long, device=self.device)
        gen = torch.Generator().manual_seed(self.seed)
        batch = int(p["batch_size"])
        self.net_.train()
        for _ in range(int(p["epochs"])):
            order = torch.randperm(len(xt), generator=gen).to(self.device)
            for start in range(0, len(xt), batch):
                rows = order[start : start + batch]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(self.net_(xt[rows]), yt[rows])
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        return self

    def predict(self, x: Array) -> Array:
        """Predicted classes; a diverged network (NaN logits) predicts one class."""
        self.net_.eval()
        with torch.no_grad():
            out = self.net_(self._tensor(x, self.image))
        return np.asarray(out.argmax(dim=1).cpu().numpy())


# ---------------------------------------------------------------- the subspaces


@dataclass(frozen=True)
class Subspace:
    """One root-to-leaf choice: its family, sampled dimensions, fixed settings and model maker.

    ``make(params, model_seed, device)`` returns an unfitted model; ``params`` holds the
    sampled columns (with their prefixes) plus ``fixed``.
    """

    family: str
    space: Mapping[str, Dim]
    make: Callable[[Mapping[str, Any], int, torch.device], Any]
    fixed: Mapping[str, Any] = field(default_factory=dict)


def _strip(params: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}


def _torch(prefix: str) -> Callable[[Mapping[str, Any], int, torch.device], Any]:
    def make(params: Mapping[str, Any], seed: int, device: torch.device) -> TorchNet:
        return TorchNet(_strip(params, prefix), seed=seed, device=device)

    return make


def _svm(params: Mapping[str, Any], seed: int, device: torch.device) -> SVC:
    p = _strip(params, "svm_")
    return SVC(kernel=p["kernel"], C=p["C"], gamma=p.get("gamma", "scale"),
               degree=int(p.get("degree", 3)), coef0=float(p.get("coef0", 0.0)),
               max_iter=SVM_MAX_ITER)  # fmt: skip


def _knn(params: Mapping[str, Any], seed: int, device: torch.device) -> KNeighborsClassifier:
    p = _strip(params, "knn_")
    return KNeighborsClassifier(n_neighbors=p["n_neighbors"], weights=p["weights"], p=p["p"],
                                n_jobs=1)  # fmt: skip


def _trees(params: Mapping[str, Any], seed: int, device: torch.device) -> Any:
    p = _strip(params, "rf_")
    kind = ExtraTreesClassifier if p.pop("kind") == "extra" else RandomForestClassifier
    return kind(n_estimators=p["n_estimators"], max_depth=p["max_depth"],
                max_features=p["max_features"], min_samples_split=p["min_samples_split"],
                min_samples_leaf=p["min_samples_leaf"], criterion=p["criterion"],
                bootstrap=bool(p["bootstrap"]), random_state=seed, n_jobs=1)  # fmt: skip


def _hgb(params: Mapping[str, Any], seed: int, device: torch.device) -> Any:
    p = _strip(params, "hgb_")
    return HistGradientBoostingClassifier(
        max_iter=p["max_iter"], learning_rate=p["learning_rate"],
        max_leaf_nodes=p["max_leaf_nodes"], min_samples_leaf=p["min_samples_leaf"],
        l2_regularization=p["l2_regularization"], max_features=p["max_features"],
        early_stopping=False, random_state=seed,
    )  # fmt: skip


def _logreg(params: Mapping[str, Any], seed: int, device: torch.device) -> LogisticRegression:
    p = _strip(params, "logreg_")
    penalty, solver = p["penalty_solver"].split("/")
    ratio = {"l2": 0.0, "l1": 1.0}.get(penalty, 0.5)
    return LogisticRegression(C=p["C"], l1_ratio=ratio, solver=solver,
                              max_iter=LOGREG_MAX_ITER, random_state=seed)  # fmt: skip


def _log(low: float, high: float) -> Dim:
    return Dim("log", low, high)


_BATCH = Dim("choice", options=(16, 32, 64, 128, 256))
_SVM_C = _log(1e-3, 1e3)


def _mlp(optimizer: str, layers: int) -> Subspace:
    space = {"mlp_hidden": Dim("log_int", 16, 256),
             "mlp_lr": _log(1e-4, 1e-1) if optimizer == "adam" else _log(1e-3, 1.0),
             "mlp_batch_size": _BATCH, "mlp_epochs": Dim("int", 2, 25),
             "mlp_weight_decay": _log(1e-6, 1e-2)}  # fmt: skip
    if optimizer == "sgd":
        space["mlp_momentum"] = Dim("uniform", 0.0, 0.95)
    fixed = {"mlp_arch": "mlp", "mlp_optimizer": optimizer, "mlp_layers": layers}
    return Subspace("mlp", space, _torch("mlp_"), fixed)


def _cnn(layers: int) -> Subspace:
    space = {"cnn_channels": Dim("log_int", 4, 48), "cnn_dense": Dim("log_int", 16, 128),
             "cnn_lr": _log(1e-4, 3e-2),
             "cnn_batch_size": Dim("choice", options=(32, 64, 128, 256)),
             "cnn_epochs": Dim("int", 2, 15), "cnn_dropout": Dim("uniform", 0.0, 0.5),
             "cnn_weight_decay": _log(1e-6, 1e-2)}  # fmt: skip
    fixed = {"cnn_arch": "cnn", "cnn_optimizer": "adam", "cnn_layers": layers}
    return Subspace("cnn", space, _torch("cnn_"), fixed)


def _svm_sub(kernel: str) -> Subspace:
    space: dict[str, Dim] = {"svm_C": _SVM_C}
    if kernel == "rbf":
        space["svm_gamma"] = _log(1e-5, 1e1)
    elif kernel == "poly":
        space |= {"svm_gamma": _log(1e-4, 1e-1), "svm_degree": Dim("int", 2, 5),
                  "svm_coef0": Dim("uniform", 0.0, 2.0)}  # fmt: skip
    return Subspace("svm", space, _svm, {"svm_kernel": kernel})


_KNN = Subspace("knn", {"knn_n_neighbors": Dim("int", 1, 50),
                        "knn_weights": Dim("choice", options=("uniform", "distance")),
                        "knn_p": Dim("int", 1, 3)}, _knn)  # fmt: skip
_TREES = {
    "rf_n_estimators": Dim("log_int", 10, 300), "rf_max_depth": Dim("int", 2, 32),
    "rf_max_features": Dim("uniform", 0.05, 1.0), "rf_min_samples_split": Dim("int", 2, 20),
    "rf_min_samples_leaf": Dim("int", 1, 10),
    "rf_criterion": Dim("choice", options=("gini", "entropy")), "rf_bootstrap": Dim("int", 0, 1),
}  # fmt: skip
_HGB = {
    "hgb_max_iter": Dim("log_int", 10, 200), "hgb_learning_rate": _log(1e-2, 1.0),
    "hgb_max_leaf_nodes": Dim("log_int", 4, 64), "hgb_min_samples_leaf": Dim("log_int", 2, 100),
    "hgb_l2_regularization": _log(1e-6, 10.0), "hgb_max_features": Dim("uniform", 0.2, 1.0),
}  # fmt: skip
_LOGREG = {
    "logreg_penalty_solver": Dim("choice", options=(
        "l2/lbfgs", "l2/newton-cg", "l1/saga", "elasticnet/saga")),
    "logreg_C": _log(1e-4, 1e3),
}  # fmt: skip


@dataclass(frozen=True)
class TableSpec:
    """One measured table: its name, default CSV name, data and subspaces (in column order)."""

    name: str
    filename: str
    load: Callable[[], Split]
    subspaces: Mapping[str, Subspace]

    @property
    def param_columns(self) -> tuple[str, ...]:
        """Every sampled column of every subspace, in first-appearance order."""
        return tuple(dict.fromkeys(c for s in self.subspaces.values() for c in s.space))

    @property
    def columns(self) -> tuple[str, ...]:
        """The CSV header: ``subspace, family, index, seed, <params>, capped, loss, runtime_s,
        wall_s``."""
        return ("subspace", "family", "index", "seed", *self.param_columns,
                "capped", "loss", "runtime_s", "wall_s")  # fmt: skip

    @property
    def order(self) -> tuple[str, ...]:
        """Subspace names in table order."""
        return tuple(self.subspaces)

    def family(self, subspace: str) -> str:
        """The workload family (device-file speedup key) of ``subspace``."""
        return self.subspaces[subspace].family

    def prepare(self) -> Split:
        """Load the data and warm torch up (:func:`warm_up`); costs about a second."""
        split = self.load()
        warm_up(split)
        return split

    def measure(self, subspace: str, params: Mapping[str, Any], model_seed: int, split: Split
                ) -> Outcome:  # fmt: skip
        """One CPU evaluation (:func:`evaluate`)."""
        return evaluate(self, subspace, params, model_seed, split)

    def sample(self, seed: int, subspace: str, index: int) -> tuple[Params, int]:
        """Configuration ``index`` of ``subspace``: ``(sampled params, model_seed)``.

        Depends only on ``(seed, position of subspace, index)``; costs microseconds.
        """
        if subspace not in self.subspaces:
            raise ValueError(f"unknown subspace {subspace!r} of table {self.name}; "
                             f"choose from {', '.join(self.subspaces)}")  # fmt: skip
        rng = np.random.default_rng((seed, list(self.subspaces).index(subspace), index))
        params = {c: d.draw(rng) for c, d in self.subspaces[subspace].space.items()}
        return params, int(rng.integers(2**31 - 1))


TORCH_DIGITS = TableSpec("torch_digits", "torch_digits_cash.csv", digits_split, {
    "mlp_adam_shallow": _mlp("adam", 1), "mlp_adam_deep": _mlp("adam", 3),
    "mlp_sgd_shallow": _mlp("sgd", 1), "mlp_sgd_deep": _mlp("sgd", 3),
    "cnn_1conv": _cnn(1), "cnn_2conv": _cnn(2),
    "svm_rbf": _svm_sub("rbf"),
    "random_forest": Subspace("rf", _TREES, _trees, {"rf_kind": "forest"}),
    "knn": _KNN,
})  # fmt: skip
"""Torch MLPs and CNNs against an SVM, a random forest and kNN on digits.

No polynomial SVM: on digits it reaches the lowest losses cheaply on one CPU core (see
digits_cash.csv, and a first 30-row version of this table, where it held 7 of the 8 rows within
the 2 % loss quantile), which would make this table repeat the digits one; here the
GPU-friendly families compete with CPU-bound ones for the best losses."""

SYNTHETIC_TABLE = TableSpec("synthetic", "synthetic_cash.csv", synthetic_split, {
    "hgb": Subspace("hgb", _HGB, _hgb),
    "svm_rbf": _svm_sub("rbf"), "svm_poly": _svm_sub("poly"),
    "random_forest": Subspace("rf", _TREES, _trees, {"rf_kind": "forest"}),
    "extra_trees": Subspace("rf", _TREES, _trees, {"rf_kind": "extra"}),
    "knn": _KNN,
    "logreg": Subspace("logreg", _LOGREG, _logreg),
    "mlp": Subspace("mlp", {"mlp_layers": Dim("int", 1, 3), **_mlp("adam", 1).space},
                    _torch("mlp_"), {"mlp_arch": "mlp", "mlp_optimizer": "adam"}),
})  # fmt: skip
"""A generated tabular problem: boosting, SVMs, forests, kNN, logistic regression, an MLP."""

TABLES: Mapping[str, TableSpec] = {t.name: t for t in (TORCH_DIGITS, SYNTHETIC_TABLE)}


# ---------------------------------------------------------------- one evaluation


def warm_up(split: Split, *, device: str | torch.device = "cpu") -> None:
    """Run a tiny MLP and CNN once, untimed, so the first timed torch fit does not pay torch's
    lazy initialisation (about a CPU-second on the first call). Costs well under a second."""
    tiny = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 256, "epochs": 1, "layers": 1,
            "optimizer": "adam", "hidden": 8, "channels": 2, "dense": 8, "dropout": 0.0}
    for arch in ("mlp", "cnn"):
        if arch == "cnn" and split.image_shape is None:
            continue
        net = TorchNet({**tiny, "arch": arch}, seed=0, device=torch.device(device))
        net.fit(split.x_train[:256], split.y_train[:256], split.image_shape)
        net.predict(split.x_val[:16])



@dataclass(frozen=True)
class Outcome:
    """What one evaluation measured: 1 - validation accuracy, seconds, and the solver cap."""

    loss: float
    runtime_s: float
    wall_s: float
    capped: bool | None


def evaluate(spec: TableSpec, subspace: str, params: Mapping[str, Any], model_seed: int,
             split: Split, *, device: str | torch.device = "cpu") -> Outcome:  # fmt: skip
    """Fit one configuration on train, score it on validation, and time fit + predict.

    On the CPU ``runtime_s`` is the process CPU time (call with the numerical libraries held to
    one thread); on a CUDA device it is the wall time up to a synchronisation, as CPU time
    says nothing there (the first CUDA call of a process also pays context creation: warm up
    first). scikit-learn families ignore ``device``. Cost: the fit itself.
    """
    where = torch.device(device)
    sub = spec.subspaces[subspace]
    model = sub.make({**params, **sub.fixed}, model_seed, where)
    cuda = where.type == "cuda"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        if cuda:
            torch.cuda.synchronize(where)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if isinstance(model, TorchNet):
            model.fit(split.x_train, split.y_train, split.image_shape)
        else:
            model.fit(split.x_train, split.y_train)
        predicted = model.predict(split.x_val)
        if cuda:
            torch.cuda.synchronize(where)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    capped = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    accuracy = float(np.mean(predicted == split.y_val))
    return Outcome(1.0 - accuracy, wall if cuda else cpu, wall,
                   capped if sub.family in CAPPED_FAMILIES else None)  # fmt: skip
