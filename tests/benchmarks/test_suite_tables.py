"""The suite's measured tables and pools, their packaged copies, the registry, and the script
that makes the tables (benchmarks/make_suite_tables.py, benchmarks/cash_families.py)."""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.simulation import load_devices, load_table
from hwaware_plugins.simulation._suite import (
    SUITE_POOLS,
    SUITE_TABLES,
    SuiteEntry,
    suite_entries,
)

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
MIN_ROWS_PER_SUBSPACE = 100


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return _load("make_suite_tables")


@pytest.fixture(scope="module")
def families() -> ModuleType:
    _load("make_suite_tables")  # puts benchmarks/ on sys.path for its sibling module
    return sys.modules["cash_families"]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Torch on one thread, as the tables were measured (two threads on a busy 2-core machine
    spin against each other and take ten times as long); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------- the committed tables


@pytest.mark.parametrize("name", ["torch_digits", "synthetic"])
def test_measured_table_matches_its_spec(families: ModuleType, name: str) -> None:
    spec = families.TABLES[name]
    rows = _rows(BENCHMARKS / "data" / spec.filename)
    counts = Counter(r["subspace"] for r in rows)
    assert list(counts) == list(spec.subspaces)  # every subspace, in spec order
    assert len(set(counts.values())) == 1 and min(counts.values()) >= MIN_ROWS_PER_SUBSPACE
    assert len({(r["subspace"], r["index"]) for r in rows}) == len(rows)
    for r in rows:
        sub = spec.subspaces[r["subspace"]]
        assert r["family"] == sub.family
        filled = {c for c in spec.param_columns if r[c] != ""}
        assert filled == set(sub.space), r
        loss, runtime = float(r["loss"]), float(r["runtime_s"])
        assert 0.0 <= loss <= 1.0 and math.isfinite(runtime) and runtime > 0.0, r
        assert (r["capped"] != "") == (sub.family in families.CAPPED_FAMILIES), r


@pytest.mark.parametrize("name", ["torch_digits", "synthetic"])
def test_measured_rows_are_the_configurations_the_script_samples(
    families: ModuleType, name: str
) -> None:
    spec = families.TABLES[name]
    rows = _rows(BENCHMARKS / "data" / spec.filename)
    for r in rows[:: max(1, len(rows) // 40)]:
        params, _ = spec.sample(int(r["seed"]), r["subspace"], int(r["index"]))
        assert {c: str(v) for c, v in params.items()} == {c: r[c] for c in params}, r


@pytest.mark.parametrize("name", list(SUITE_TABLES))
def test_suite_tables_load_and_spread(name: str) -> None:
    table = load_table(SUITE_TABLES[name])
    assert len(table.subspaces) >= 6
    for sub in table.subspaces:
        assert sub.losses.max() > sub.losses.min(), sub.key
        assert sub.runtimes.max() > 2 * sub.runtimes.min(), sub.key


# ---------------------------------------------------------------- pools and registry


@pytest.mark.parametrize("pool", list(SUITE_POOLS))
def test_every_pool_has_150_slots_and_a_speedup_for_every_family(pool: str) -> None:
    devices = load_devices(SUITE_POOLS[pool])
    assert sum(d.slots for d in devices) == 150
    for table in SUITE_TABLES.values():
        for family in {s.family for s in load_table(table).subspaces}:
            missing = [d.id for d in devices if family not in d.speedup]
            assert not missing, (pool, family, missing)


def test_the_pools_cover_gpu_heavy_cpu_heavy_and_two_classes() -> None:
    def gpu_share(pool: str) -> float:
        devices = load_devices(SUITE_POOLS[pool])
        return sum(d.slots for d in devices if d.kind == "gpu") / 150

    assert gpu_share("gpu-heavy-150") > 0.5 > gpu_share("cpu-heavy-150")
    classes = {d.device_class for d in load_devices(SUITE_POOLS["two-class-150"])}
    assert len(classes) == 2


def test_packaged_suite_files_match_the_repository_copies() -> None:
    for path in SUITE_TABLES.values():
        assert path.read_bytes() == (BENCHMARKS / "data" / path.name).read_bytes(), path.name
    for path in SUITE_POOLS.values():
        assert path.read_bytes() == (BENCHMARKS / "devices" / path.name).read_bytes(), path.name


def test_suite_entries_are_every_table_on_every_pool() -> None:
    entries = suite_entries()
    assert len(entries) == len(SUITE_TABLES) * len(SUITE_POOLS)
    assert {(e.table, e.pool) for e in entries} == {
        (t, p) for t in SUITE_TABLES for p in SUITE_POOLS
    }
    assert entries[0] == SuiteEntry(
        "digits", "hetero-150", SUITE_TABLES["digits"], SUITE_POOLS["hetero-150"]
    )
    assert entries[0].label == "digits@hetero-150"
    picked = suite_entries(tables=["synthetic"], pools=["two-class-150", "gpu-heavy-150"])
    assert [e.label for e in picked] == ["synthetic@two-class-150", "synthetic@gpu-heavy-150"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tables": ["mnist"]}, "unknown suite table 'mnist'"),
     ({"pools": ["tpu-150"]}, "unknown suite pool 'tpu-150'"),
     ({"pools": []}, "no suite pool chosen")],
)  # fmt: skip
def test_a_bad_suite_selection_names_the_choices(kwargs: dict[str, list[str]], message: str
                                                 ) -> None:  # fmt: skip
    with pytest.raises(ConfigError, match=message) as exc:
        suite_entries(**kwargs)
    assert "choose from" in str(exc.value)


# ---------------------------------------------------------------- the script and families


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), index=st.integers(0, 10**6), data=st.data())
def test_sampling_is_reproducible_and_in_range(
    families: ModuleType, seed: int, index: int, data: st.DataObject
) -> None:
    spec = data.draw(st.sampled_from(list(families.TABLES.values())))
    subspace = data.draw(st.sampled_from(list(spec.subspaces)))
    params, model_seed = spec.sample(seed, subspace, index)
    assert (params, model_seed) == spec.sample(seed, subspace, index)
    for column, dim in spec.subspaces[subspace].space.items():
        if dim.kind == "choice":
            assert params[column] in dim.options
        else:
            assert dim.low <= params[column] <= dim.high, (column, params[column])


def test_torch_families_learn_digits(families: ModuleType, one_thread: None) -> None:
    spec, split = families.TORCH_DIGITS, families.digits_split()
    mlp = {"mlp_hidden": 64, "mlp_lr": 0.05, "mlp_batch_size": 64, "mlp_epochs": 3,
           "mlp_weight_decay": 1e-5, "mlp_momentum": 0.9}  # fmt: skip
    cnn = {"cnn_channels": 8, "cnn_dense": 32, "cnn_lr": 3e-3, "cnn_batch_size": 64,
           "cnn_epochs": 3, "cnn_dropout": 0.1, "cnn_weight_decay": 1e-5}  # fmt: skip
    for subspace, params in (("mlp_sgd_shallow", mlp), ("cnn_2conv", cnn)):
        outcome = families.evaluate(spec, subspace, params, 0, split, device="cpu")
        assert outcome.loss < 0.15, (subspace, outcome)
        assert outcome.runtime_s > 0 and outcome.capped is None


def test_run_resumes_and_writes_the_table_only_when_complete(
    script: ModuleType, families: ModuleType, tmp_path: Path
) -> None:
    spec, out = families.SYNTHETIC_TABLE, tmp_path / "synthetic.csv"
    cheap = ["knn", "logreg"]
    assert script.run(spec, out=out, per_subspace=2, seed=3, subspaces=cheap, quiet=True) == 4
    first = out.read_text()
    assert not script.partial_path(out).exists()
    assert script.run(spec, out=out, per_subspace=2, seed=3, subspaces=cheap, quiet=True) == 0
    assert out.read_text() == first
    assert script.run(spec, out=out, per_subspace=3, seed=3, subspaces=cheap, quiet=True) == 2
    rows = _rows(out)
    assert [(r["subspace"], r["index"]) for r in rows] == [
        ("knn", "0"), ("knn", "1"), ("knn", "2"), ("logreg", "0"), ("logreg", "1"),
        ("logreg", "2"),
    ]  # fmt: skip
    before = list(csv.DictReader(first.splitlines()))
    assert [r for r in rows if int(r["index"]) < 2] == before  # extending keeps measured rows
    assert load_table(out).subspaces[0].key == "knn"
    with pytest.raises(ValueError, match="another --seed"):
        script.run(spec, out=out, per_subspace=4, seed=4, subspaces=cheap, quiet=True)


def test_cli_makes_a_tiny_table_end_to_end(script: ModuleType, tmp_path: Path) -> None:
    argv = ["--table", "torch_digits", "--subspaces", "knn,svm_rbf", "--per-subspace", "1",
            "--out-dir", str(tmp_path)]  # fmt: skip
    assert script.main(argv) == 0
    table = load_table(tmp_path / "torch_digits_cash.csv")
    assert [s.key for s in table.subspaces] == ["svm_rbf", "knn"]


def test_cli_rejects_an_unknown_subspace(script: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        script.main(["--table", "synthetic", "--subspaces", "knn,xgboost",
                     "--out-dir", str(tmp_path)])  # fmt: skip
    assert exc.value.code == 2
