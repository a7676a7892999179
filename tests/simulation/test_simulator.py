"""The simulator: table loading, slot scaling, determinism, metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwaware_plugins import load
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.simulation import (
    best_loss_curve,
    build_slots,
    class_infos,
    load_devices,
    load_table,
    models_per_hour,
    run_benchmark,
    scaled_slot_counts,
    simulate,
    time_to_target,
    time_to_target_floor,
)


def test_table_loads_and_infers_complexity(table_path: Path) -> None:
    table = load_table(table_path)
    assert [s.key for s in table.subspaces] == ["svm", "mlp", "rf"]
    assert all(len(s) == 40 for s in table.subspaces)
    assert "wall_s" not in table.subspaces[0].params[0]
    infos = {i.key: i for i in table.subspace_infos()}
    assert infos["svm"].family == "svm" and infos["svm"].complexity > infos["rf"].complexity


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("subspace,family,loss\n", "missing column"),
        ("subspace,family,loss,runtime_s\n", "no rows"),
        ("subspace,family,loss,runtime_s\na,svm,0.1,0\n", ":2: runtime_s must be > 0"),
        ("subspace,family,loss,runtime_s\na,svm,nan,1\n", "must be finite"),
        ("subspace,family,loss,runtime_s\na,svm,0.1,1\na,mlp,0.1,1\n", "family"),
        ("subspace,family,loss,loss,runtime_s\na,svm,0.1,0.2,1\n", "loss appear more than once"),
        ("subspace,family,loss,runtime_s\nb\xe9ta,svm,0.1,1\n".encode("latin-1"),
         "not UTF-8 text"),
        (b"\x80\x81\x00binary", "not UTF-8 text"),
        ("subspace,family,loss,runtime_s\na,svm,0.1," + "9" * 200_000 + "\n",
         "field larger than field limit"),
    ],
)
def test_bad_tables_are_one_line_errors(tmp_path: Path, text: str | bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_table(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_table(tmp_path / "missing.csv")


def test_slots_scale_keeping_the_class_mix(devices_path: Path) -> None:
    devices = load_devices(devices_path)
    assert len(build_slots(devices)) == 8
    infos = class_infos(build_slots(devices, 16))
    assert [(c.name, c.slots) for c in infos] == [("fast", 4), ("cpu", 12)]
    # the per-family speedups drive the simulated clock; schedulers are not told them
    assert all(c.speedup == {} for c in infos)
    told = class_infos(build_slots(devices, 16), with_speedups=True)
    assert told[0].speedup == {"mlp": 10.0, "svm": 1.0}
    assert scaled_slot_counts([1, 1, 1], 2) == [1, 1, 0]
    with pytest.raises(ConfigError, match="workers"):
        scaled_slot_counts([1], 0)


@pytest.mark.parametrize("name", ["fcfs", "hwaware"])
def test_simulation_is_deterministic_per_seed(
    table_path: Path, devices_path: Path, name: str
) -> None:
    table, slots = load_table(table_path), build_slots(load_devices(devices_path))

    def run(seed: int) -> object:
        return simulate(table, slots, load("scheduler", name, seed=seed), budget_s=60, seed=seed)

    a, b, c = run(1), run(1), run(2)
    assert np.array_equal(a.end, b.end) and a.subspace == b.subspace  # type: ignore[attr-defined]
    assert not np.array_equal(a.end, c.end)  # type: ignore[attr-defined]


def test_runtime_follows_device_speed(table_path: Path, devices_path: Path) -> None:
    table, slots = load_table(table_path), build_slots(load_devices(devices_path))
    run = simulate(table, slots, load("scheduler", "fcfs", seed=0), budget_s=120, seed=0)
    assert np.all(run.end <= 120) and np.all(np.diff(run.end) >= 0)
    duration = run.end - run.start
    mlp_gpu = [
        d
        for d, s, c in zip(duration, run.subspace, run.device_class, strict=False)
        if (s, c) == ("mlp", "fast")
    ]
    mlp_cpu = [
        d
        for d, s, c in zip(duration, run.subspace, run.device_class, strict=False)
        if (s, c) == ("mlp", "cpu")
    ]
    assert np.median(mlp_cpu) > 5 * np.median(mlp_gpu)


def test_metrics_on_a_run(table_path: Path, devices_path: Path) -> None:
    table, slots = load_table(table_path), build_slots(load_devices(devices_path))
    run = simulate(table, slots, load("scheduler", "hwaware", seed=0), budget_s=300, seed=0)
    assert models_per_hour(run) == pytest.approx(len(run) * 12)
    curve = best_loss_curve(run, [0.0, 150.0, 300.0])
    assert np.isnan(curve[0]) and curve[1] >= curve[2] == run.loss.min()
    hit = time_to_target(run, float(run.loss.min()))
    assert hit is not None and 0 < hit <= 300
    assert time_to_target(run, -1.0) is None


def test_no_run_reaches_a_target_before_its_floor(table_path: Path, devices_path: Path) -> None:
    table, slots = load_table(table_path), build_slots(load_devices(devices_path))
    mlp = next(s for s in table.subspaces if s.key == "mlp")
    target = float(np.sort(np.concatenate([s.losses for s in table.subspaces]))[5])
    floor = time_to_target_floor(table, slots, target)
    by_hand = min(
        float(s.runtimes[s.losses <= target].min()) / (10.0 if s is mlp else 1.0)
        for s in table.subspaces
        if (s.losses <= target).any()
    )
    assert floor == pytest.approx(by_hand)
    for name in ("fcfs", "hwaware"):
        for seed in range(3):
            scheduler = load("scheduler", name, seed=seed)
            run = simulate(table, slots, scheduler, budget_s=600, seed=seed)
            reached = time_to_target(run, target)
            assert reached is None or reached >= floor
    assert time_to_target_floor(table, slots, -1.0) is None


def test_hwaware_puts_the_network_on_the_gpu(table_path: Path, devices_path: Path) -> None:
    table, slots = load_table(table_path), build_slots(load_devices(devices_path))

    def mlp_on_gpu(name: str) -> float:
        runs = [
            simulate(table, slots, load("scheduler", name, seed=s), budget_s=600, seed=s)
            for s in range(3)
        ]
        pairs = [(sub, c) for r in runs for sub, c in zip(r.subspace, r.device_class, strict=True)]
        mlp = [c for sub, c in pairs if sub == "mlp"]
        return mlp.count("fast") / len(mlp)

    # 2 of 8 slots are GPUs (10x on mlp, 1x on svm); fcfs sends mlp wherever a slot frees up
    assert mlp_on_gpu("hwaware") > mlp_on_gpu("fcfs") + 0.1


def test_benchmark_report(table_path: Path, devices_path: Path) -> None:
    report = run_benchmark(
        load_table(table_path),
        load_devices(devices_path),
        workers=None,
        seeds=2,
        budget_hours=0.05,
        schedulers=["fcfs", "hwaware"],
    )
    assert set(report["ratios"]) == {"hwaware_vs_fcfs"}
    floor_h = report["bounds"]["hours_to_target_floor"]
    assert floor_h > 0
    for name in ("fcfs", "hwaware"):
        ceiling = report["bounds"]["time_to_target_ceiling"][name]
        assert ceiling == pytest.approx(report["schedulers"][name]["hours_to_target"] / floor_h)
        assert ceiling >= 1.0
    assert set(report["schedulers"]["fcfs"]) >= {"models_per_hour", "hours_to_target", "best_loss"}
    assert len(report["curves"]["hours"]) == len(report["curves"]["hwaware"])


def test_a_table_saved_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text("subspace,family,loss,runtime_s\na,svm,0.1,1\n", encoding="utf-8-sig")
    assert [s.key for s in load_table(path).subspaces] == ["a"]


def test_a_runtime_too_small_to_move_the_clock_stops_the_run_with_its_cause(
    tmp_path: Path, devices_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hwaware_plugins.simulation import _engine

    monkeypatch.setattr(_engine, "MAX_TRIALS", 2_000)  # the same stop, sooner
    path = tmp_path / "tiny.csv"
    path.write_text("subspace,family,loss,runtime_s\na,f1,0.1,1e-320\na,f1,0.2,1e-320\n")
    slots = build_slots(load_devices(devices_path))
    cause = r"finished 2,000 trials .* subspace 'a' takes 1e-320 s; lower --budget-hours"
    with pytest.raises(ConfigError, match=cause):
        simulate(load_table(path), slots, load("scheduler", "random", seed=0), budget_s=10.0,
                 seed=0)
