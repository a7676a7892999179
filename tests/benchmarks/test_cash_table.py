"""The committed digits CASH table and the script that makes it (benchmarks/make_cash_table.py)."""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
TABLE = BENCHMARKS / "data" / "digits_cash.csv"

FAMILIES = {
    "svm_linear": "svm", "svm_rbf": "svm", "svm_poly": "svm", "svm_sigmoid": "svm",
    "random_forest": "rf", "knn": "knn", "logreg": "logreg", "mlp": "mlp",
}  # fmt: skip
USED = {
    "svm_linear": {"svm_C"},
    "svm_rbf": {"svm_C", "svm_gamma"},
    "svm_poly": {"svm_C", "svm_gamma", "svm_degree", "svm_coef0"},
    "svm_sigmoid": {"svm_C", "svm_gamma", "svm_coef0"},
    "random_forest": {"rf_n_estimators", "rf_max_depth", "rf_max_features",
                      "rf_min_samples_split", "rf_min_samples_leaf", "rf_criterion",
                      "rf_bootstrap"},
    "knn": {"knn_n_neighbors", "knn_weights", "knn_p"},
    "logreg": {"logreg_C", "logreg_penalty", "logreg_solver", "logreg_l1_ratio"},
    "mlp": {"mlp_hidden", "mlp_layers", "mlp_lr", "mlp_batch_size", "mlp_epochs",
            "mlp_weight_decay"},
}  # fmt: skip
PARAMS = set().union(*USED.values())


@pytest.fixture(scope="module")
def table() -> list[dict[str, str]]:
    with TABLE.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_cash_table", BENCHMARKS /
                                                  "make_cash_table.py")  # fmt: skip
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- the committed CSV


def test_columns_are_subspace_family_params_and_measurements(table: list[dict[str, str]]) -> None:
    columns = set(table[0])
    assert {"subspace", "family", "index", "loss", "runtime_s", "wall_s"} <= columns
    assert columns - {"subspace", "family", "index", "seed", "capped", "loss", "runtime_s",
                      "wall_s"} == PARAMS  # fmt: skip


def test_every_subspace_has_200_distinct_configurations(table: list[dict[str, str]]) -> None:
    counts = Counter(row["subspace"] for row in table)
    assert set(counts) == set(FAMILIES)
    assert min(counts.values()) >= 200
    assert len({(row["subspace"], row["index"]) for row in table}) == len(table)


def test_family_matches_device_speedup_names(table: list[dict[str, str]]) -> None:
    assert all(row["family"] == FAMILIES[row["subspace"]] for row in table)


def test_losses_are_finite_error_rates_and_runtimes_positive(
    table: list[dict[str, str]],
) -> None:
    for row in table:
        loss, runtime, wall = float(row["loss"]), float(row["runtime_s"]), float(row["wall_s"])
        assert math.isfinite(loss) and 0.0 <= loss <= 1.0, row
        assert math.isfinite(runtime) and runtime > 0.0, row
        assert math.isfinite(wall) and wall > 0.0, row


def test_a_row_fills_exactly_the_parameters_of_its_subspace(table: list[dict[str, str]]) -> None:
    for row in table:
        filled = {column for column in PARAMS if row[column] != ""}
        assert filled == USED[row["subspace"]], row


def test_each_subspace_spreads_in_loss_and_runtime(table: list[dict[str, str]]) -> None:
    for subspace in FAMILIES:
        rows = [row for row in table if row["subspace"] == subspace]
        losses = [float(row["loss"]) for row in rows]
        runtimes = sorted(float(row["runtime_s"]) for row in rows)
        assert max(losses) > min(losses), subspace
        assert runtimes[-1] > 2 * runtimes[0], subspace


# ---------------------------------------------------------------- the script


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), index=st.integers(0, 10**6),
       subspace=st.sampled_from(sorted(FAMILIES)))  # fmt: skip
def test_sampled_configurations_are_reproducible_and_in_range(
    script: ModuleType, seed: int, index: int, subspace: str
) -> None:
    params, model_seed = script.sample_config(seed, subspace, index)
    assert (params, model_seed) == script.sample_config(seed, subspace, index)
    assert set(params) == USED[subspace]
    for column, dim in script.SPACE[subspace].items():
        if dim.kind == "choice":
            assert params.get(column, ()) in dim.options or column == "logreg_penalty_solver"
        elif column in params:
            assert dim.low <= params[column] <= dim.high, (column, params[column])
    if subspace == "logreg":
        expected = {"l2": {0.0}, "l1": {1.0}}.get(params["logreg_penalty"])
        assert expected is None or {params["logreg_l1_ratio"]} == expected
        assert (params["logreg_penalty"], params["logreg_solver"]) in (
            script.SPACE["logreg"]["logreg_penalty_solver"].options
        )


def test_run_resumes_and_writes_the_table_only_when_complete(
    script: ModuleType, tmp_path: Path
) -> None:
    out = tmp_path / "cash.csv"
    cheap = ["svm_linear", "knn"]
    assert script.run(out=out, per_subspace=2, seed=3, subspaces=cheap) == 4
    first = out.read_text()
    assert not script.partial_path(out).exists()
    assert script.run(out=out, per_subspace=2, seed=3, subspaces=cheap) == 0
    assert out.read_text() == first
    assert script.run(out=out, per_subspace=3, seed=3, subspaces=cheap) == 2
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["subspace"], r["index"]) for r in rows] == [
        ("svm_linear", "0"), ("svm_linear", "1"), ("svm_linear", "2"),
        ("knn", "0"), ("knn", "1"), ("knn", "2"),
    ]  # fmt: skip
    assert out.read_text().startswith(first.splitlines()[0])


def test_a_partial_file_from_another_seed_is_refused(script: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "cash.csv"
    script.run(out=out, per_subspace=1, seed=1, subspaces=["svm_linear"])
    with pytest.raises(ValueError, match="another --seed"):
        script.run(out=out, per_subspace=2, seed=2, subspaces=["svm_linear"])


def test_cli_rejects_an_unknown_subspace(script: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        script.main(["--subspaces", "svm_linear,xgboost", "--out", str(tmp_path / "t.csv")])
    assert exc.value.code == 2


def test_mlp_learns_digits(script: ModuleType) -> None:
    split = script.load_split()
    params = {"mlp_hidden": 64, "mlp_layers": 1, "mlp_lr": 3e-3, "mlp_batch_size": 64,
              "mlp_epochs": 3, "mlp_weight_decay": 1e-5}  # fmt: skip
    outcome = script.evaluate("mlp", params, 0, split)
    assert outcome.loss < 0.1 and outcome.runtime_s > 0 and outcome.capped is None
