"""Validate every GPU path on a real NVIDIA GPU in one run, and measure what only a GPU shows.

    python benchmarks/gpu/validate.py --out DIR            # on a machine with an NVIDIA GPU
    python benchmarks/gpu/validate.py --out DIR --dry-run  # simulated NVML, CPU, tiny sizes

Writes ``DIR/gpu.json`` (one section per check, each with ``ok`` and its figures) and
``DIR/validate.log``. The checks, in order, each isolated (a failing one is recorded and
the next one runs) and skipped once ``--budget-s`` (default 480 s) is spent:

1. ``discovery``: ``hwaware devices --json`` through NVML against ``nvidia-smi`` and torch;
   the speed probe's figure for the GPU and the CPU.
2. ``pinning``: trials of ``hwaware_optuna.optimize`` and ``HardwareAwareTrials`` see exactly
   their slot's GPU (``CUDA_VISIBLE_DEVICES`` by UUID, one device, the same UUID in torch).
3. ``packing``: N small-model trials one at a time (exclusive) against packed by memory,
   through ``optimize`` and through threads (``n_jobs``): trials per hour, learned peaks,
   mean GPU utilisation (NVML, sampled every 0.2 s).
4. ``oom``: an objective allocating 1.5x the free memory gets a CUDA OOM; the outcome is
   classified ``oom``, the memory need grows, and NVML shows the memory back afterwards.
5. ``courtesy``: a foreign process holding GPU memory is seen (count, memory) and a pool
   with the default settings does not lease that GPU.
6. ``sgd``: ``hwaware bench sgd`` policies on CUDA with three ranks sharing the GPU
   (slowdowns 1, 2, 4 on the real clock, gloo) and the same on the CPU.
7. ``speedups``: each torch family of the benchmark tables timed on the GPU and on one CPU
   core, written as ``DIR/measured-<gpu>.toml`` for the scheduling suite.

The GPU machine lacks optuna, hyperopt and sqlalchemy: carry them as wheels (see
docs/benchmarks.md, "Real GPU").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _objectives as objectives  # noqa: E402

_log = logging.getLogger("validate")

TORCH_FAMILIES = frozenset({"mlp", "cnn"})
"""Workload families of the benchmark tables that run on torch (and so on a GPU)."""

FAKE_NVML = """[[gpu]]
name = "NVIDIA H200 (simulated)"
memory_total_mb = 4096
uuid = "GPU-00000000-0000-0000-0000-000000000001"
compute_capability = [9, 0]
utilization = 0
"""


class Run:
    """The state of one validation run: options, deadline and the report being built."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.out: Path = args.out
        self.dry_run: bool = args.dry_run
        self.deadline = time.monotonic() + args.budget_s
        self.trials = 3 if args.dry_run else args.trials
        self.report: dict[str, Any] = {"dry_run": args.dry_run, "checks": {}}

    def check(self, name: str, fn: Callable[[Run], dict[str, Any]]) -> None:
        """Run one check, record its result (or its error) and how long it took."""
        if time.monotonic() > self.deadline:
            self.report["checks"][name] = {"ok": False, "skipped": "time budget spent"}
            return
        started = time.monotonic()
        _log.info("== %s", name)
        try:
            result = fn(self)
        except Exception as exc:  # a failing check must not hide the others
            _log.exception("%s failed", name)
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        result["elapsed_s"] = round(time.monotonic() - started, 2)
        self.report["checks"][name] = result
        _log.info("%s: ok=%s in %.1f s", name, result.get("ok"), result["elapsed_s"])
        self.save()

    def save(self) -> None:
        """Write gpu.json (after every check, so a killed run keeps what it measured)."""
        path = self.out / "gpu.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.report, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def _gpus() -> list[Any]:
    from hwaware_plugins.hardware import probe_nvml_devices

    return [d for d in probe_nvml_devices() if d.kind == "gpu"]


class UtilisationSampler:
    """Samples NVML utilisation of the first GPU every ``period_s`` in a thread."""

    def __init__(self, period_s: float = 0.2) -> None:
        self.period_s = period_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            gpus = _gpus()
            if gpus and gpus[0].utilization is not None:
                self.samples.append(float(gpus[0].utilization))

    def __enter__(self) -> UtilisationSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float | None:
        """Mean utilisation in percent, or None without samples."""
        return statistics.fmean(self.samples) if self.samples else None


# -- 1. discovery --------------------------------------------------------------------------


def check_discovery(run: Run) -> dict[str, Any]:
    """NVML through the CLI against nvidia-smi and torch; measured GPU and CPU speeds."""
    cli = subprocess.run([sys.executable, "-m", "hwaware_plugins.cli", "devices", "--json"],
                         capture_output=True, text=True, check=True)
    listed = [d for d in json.loads(cli.stdout) if d["kind"] == "gpu"]
    result: dict[str, Any] = {"hwaware": listed}
    if shutil.which("nvidia-smi") and not run.dry_run:
        query = "name,uuid,memory.total,memory.free,compute_cap,mig.mode.current"
        smi = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, check=True)
        rows = [[part.strip() for part in line.split(",")] for line in smi.stdout.splitlines()]
        result["nvidia_smi"] = rows
        result["agree"] = bool(rows) and all(
            any(d["uuid"] == row[1] and abs(d["memory_total_mb"] - float(row[2])) <= 2
                for d in listed) for row in rows)
    import torch

    if torch.cuda.is_available() and not run.dry_run:
        props = torch.cuda.get_device_properties(0)
        result["torch"] = {"count": torch.cuda.device_count(), "name": props.name,
                           "total_mb": props.total_memory // 2**20,
                           "capability": [props.major, props.minor]}
    from hwaware_plugins.hardware import discover_devices
    from hwaware_plugins.hardware._speed import measure_cpu_gflops, measure_gpu_gflops

    result["cpu_gflops"] = measure_cpu_gflops()
    if listed and listed[0]["uuid"] and not run.dry_run:
        result["gpu_gflops"] = measure_gpu_gflops(listed[0]["uuid"])
    result["probed"] = [d.id for d in discover_devices()]
    result["ok"] = bool(listed) and result.get("agree", True)
    return result


# -- 2. pinning ----------------------------------------------------------------------------


def check_pinning(run: Run) -> dict[str, Any]:
    """Trials of optimize and HardwareAwareTrials see exactly their slot's device."""
    import numpy as np
    import optuna
    from hwaware_hyperopt import HardwareAwareTrials
    from hwaware_optuna import HardwareAwareSampler, optimize
    from hyperopt import fmin, hp, rand

    gpu = _gpus()[0]
    study = optuna.create_study(sampler=HardwareAwareSampler(seed=0))
    optimize(study, objectives.optuna_small_model, n_trials=2)
    seen_optuna = [{k[5:]: v for k, v in t.user_attrs.items() if k.startswith("seen_")}
                   for t in study.trials]
    trials = HardwareAwareTrials()
    fmin(objectives.hyperopt_visible, {"x": hp.uniform("x", -1, 1)}, algo=rand.suggest,
         max_evals=2, trials=trials, rstate=np.random.default_rng(0), show_progressbar=False)
    seen_hyperopt = [r.get("seen", {}) for r in trials.results]
    if hasattr(trials, "close"):
        trials.close()
    seen = seen_optuna + seen_hyperopt

    def pinned(s: dict[str, Any]) -> bool:
        if s.get("cuda_visible_devices") != gpu.uuid:
            return False
        if run.dry_run:
            return True
        return s.get("torch_device_count") == 1 and s.get("torch_uuid") == gpu.uuid

    gpu_trials = [s for s in seen if s.get("hwaware_device_id", "").startswith("gpu")]
    return {"gpu_uuid": gpu.uuid, "optuna": seen_optuna, "hyperopt": seen_hyperopt,
            "ok": bool(gpu_trials) and all(pinned(s) for s in gpu_trials)}


# -- 3. packing ----------------------------------------------------------------------------


def _packing_run(run: Run, packing: str, path: str) -> dict[str, Any]:
    import optuna
    from hwaware_optuna import HardwareAwareSampler, optimize

    sampler = HardwareAwareSampler(seed=0, packing=packing, skip_foreign_processes=False)
    study = optuna.create_study(sampler=sampler)
    gpu_only = [d for d in _gpus()]
    started = time.perf_counter()
    with UtilisationSampler() as util:
        if path == "optimize":
            optimize(study, objectives.optuna_small_model, n_trials=run.trials, devices=gpu_only)
        else:
            study.sampler = HardwareAwareSampler(seed=0, packing=packing, devices=gpu_only,
                                                 skip_foreign_processes=False)
            study.optimize(objectives.optuna_small_model, n_trials=run.trials, n_jobs=4)
    wall = time.perf_counter() - started
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    peaks = [t.system_attrs.get("hwaware:peak_memory_mb") for t in done]
    return {"packing": packing, "path": path, "trials": len(done), "wall_s": round(wall, 2),
            "trials_per_hour": round(3600 * len(done) / wall, 1),
            "peak_memory_mb": [p for p in peaks if p is not None],
            "train_s": [t.user_attrs.get("train_s") for t in done],
            "gpu_utilisation_mean": util.mean}


def check_packing(run: Run) -> dict[str, Any]:
    """Exclusive against memory packing, through optimize and through threads."""
    rows = [_packing_run(run, packing, path)
            for path in ("optimize", "threads") for packing in ("exclusive", "memory")]
    ratios = {}
    for path in ("optimize", "threads"):
        alone, packed = (r for r in rows if r["path"] == path)
        ratios[path] = round(packed["trials_per_hour"] / max(alone["trials_per_hour"], 1e-9), 2)
    return {"runs": rows, "packed_vs_exclusive": ratios,
            "ok": all(r["trials"] == run.trials for r in rows)}


# -- 4. out of memory ----------------------------------------------------------------------


def check_oom(run: Run) -> dict[str, Any]:
    """A real CUDA OOM: classified, memory need raised, memory back afterwards."""
    from hwaware_plugins.executors import LocalExecutor

    gpus = _gpus()
    before = gpus[0].memory_free_mb
    with LocalExecutor(gpus, max_oom_retries=1) as executor:
        outcome = executor.submit(objectives.allocate_past_free, memory_mb=1024,
                                  label="oom").result()
    time.sleep(1.0)
    after = _gpus()[0].memory_free_mb
    back = before is None or after is None or after >= before - 64
    return {"state": outcome.state, "error": outcome.error, "attempts": outcome.attempts,
            "memory_mb_last": outcome.memory_mb, "free_mb_before": before,
            "free_mb_after": after, "memory_back": back,
            "ok": outcome.state == "oom" and (outcome.memory_mb or 0) > 1024 and back}


# -- 5. courtesy ---------------------------------------------------------------------------


def check_courtesy(run: Run) -> dict[str, Any]:
    """A foreign process holding memory is seen, and the default pool leaves that GPU alone."""
    from hwaware_plugins.errors import HwawareError
    from hwaware_plugins.hardware import DevicePool

    if run.dry_run:
        fake = Path(os.environ["HWAWARE_FAKE_NVML"])
        original = fake.read_text(encoding="utf-8")
        fake.write_text(original + "\n[[gpu.process]]\npid = 999999\nused_memory_mb = 512\n",
                        encoding="utf-8")
        holder = None
    else:
        code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import _objectives as o; "
                "o.hold_memory(2048, 60)")
        holder = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        time.sleep(8.0)
    try:
        gpu = _gpus()[0]
        pool = DevicePool([gpu], name="courtesy", state_dir=tempfile.mkdtemp())
        reason: str | None = None
        try:
            pool.acquire(timeout=0).release()
            leased = True
        except HwawareError as exc:
            leased, reason = False, str(exc)
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        if run.dry_run:
            fake.write_text(original, encoding="utf-8")
    return {"foreign_processes": gpu.foreign_processes, "memory_free_mb": gpu.memory_free_mb,
            "leased_with_defaults": leased, "refusal": reason,
            "ok": gpu.foreign_processes >= 1 and not leased}


# -- 6. adaptive SGD -----------------------------------------------------------------------


def check_sgd(run: Run) -> dict[str, Any]:
    """Adaptive SGD against sync on CUDA (three ranks sharing the GPU) and on the CPU."""
    from hwaware_plugins.cli._bench_sgd import SGDBenchConfig, run_benchmark

    epochs = 0.5 if run.dry_run else 4.0
    results = {}
    targets = ["cpu"] if run.dry_run else ["cuda", "cpu"]
    for device in targets:
        config = SGDBenchConfig(workers=3, slowdowns=(1.0, 2.0, 4.0), epochs=epochs,
                                policies=("sync", "adaptive"), device=device, clock="real",
                                target_accuracy=0.9)
        results[device] = run_benchmark(config)["policies"]
    return {"results": results, "ok": all(len(r) == 2 for r in results.values())}


# -- 7. measured speedups ------------------------------------------------------------------


def check_speedups(run: Run) -> dict[str, Any]:
    """Time the torch families of the benchmark tables on the GPU and on one CPU core.

    For each table of ``benchmarks/cash_families.py`` and each torch subspace (families
    ``mlp`` and ``cnn``), the same configurations run on one CPU thread and on the GPU;
    a family's speedup is the median CPU ``runtime_s`` over the median GPU one. The
    scikit-learn families stay on the CPU (speedup 1.0 by definition).
    """
    import torch

    sys.path.insert(0, str(HERE.parent))
    import cash_families

    target = "cpu" if run.dry_run else "cuda"
    configs = 1 if run.dry_run else 3
    tables = ["torch_digits"] if run.dry_run else list(cash_families.TABLES)
    threads = torch.get_num_threads()
    times: dict[str, dict[str, list[float]]] = {}
    try:
        for name in tables:
            spec = cash_families.TABLES[name]
            split = spec.load()
            torch.set_num_threads(1)
            cash_families.warm_up(split, device="cpu")
            cash_families.warm_up(split, device=target)
            for subspace in spec.subspaces:
                family = spec.family(subspace)
                if family not in TORCH_FAMILIES:
                    continue
                for index in range(configs):
                    params, seed = spec.sample(0, subspace, index)
                    if run.dry_run:
                        params = {**params, "epochs": 1}
                    per = times.setdefault(family, {"cpu": [], "gpu": []})
                    for where, key in (("cpu", "cpu"), (target, "gpu")):
                        outcome = cash_families.evaluate(spec, subspace, params, seed, split,
                                                         device=where)
                        per[key].append(outcome.runtime_s)
    finally:
        torch.set_num_threads(threads)
    speedups = {family: statistics.median(t["cpu"]) / max(statistics.median(t["gpu"]), 1e-9)
                for family, t in times.items()}
    gpu_name = "simulated" if run.dry_run else _gpus()[0].name.replace(" ", "-")
    lines = [f"# Measured by benchmarks/gpu/validate.py on {gpu_name}: per-family time on one",
             "# CPU thread divided by time on the GPU (medians over the same configurations).",
             "# scikit-learn families run on the CPU: speedup 1.0.",
             "[[device]]", 'kind = "gpu"', f'name = "{gpu_name}"', "count = 1",
             "[device.speedup]"]
    lines += [f"{family} = {value:.2f}" for family, value in sorted(speedups.items())]
    lines += [f"{family} = 1.0" for family in ("svm", "rf", "knn", "logreg", "hgb")
              if family not in speedups]
    path = run.out / f"measured-{gpu_name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"speedups": speedups, "seconds": times, "device_file": path.name,
            "ok": bool(speedups)}


CHECKS: tuple[tuple[str, Callable[[Run], dict[str, Any]]], ...] = (
    ("discovery", check_discovery), ("pinning", check_pinning), ("packing", check_packing),
    ("oom", check_oom), ("courtesy", check_courtesy), ("sgd", check_sgd),
    ("speedups", check_speedups),
)


def main(argv: list[str] | None = None) -> int:
    """Run every check (or those named by ``--only``) and write gpu.json; exit 1 if one failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dry-run", action="store_true",
                        help="simulated NVML on the CPU with tiny sizes (CI)")
    parser.add_argument("--budget-s", type=float, default=480.0)
    parser.add_argument("--trials", type=int, default=12, help="trials per packing run")
    parser.add_argument("--only", default=None, help="comma-separated check names")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s",
                        handlers=[logging.StreamHandler(),
                                  logging.FileHandler(args.out / "validate.log")])
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="hwaware-validate-"))
    if args.dry_run:
        fake = args.out / "fake-nvml.toml"
        fake.write_text(FAKE_NVML, encoding="utf-8")
        os.environ["HWAWARE_FAKE_NVML"] = str(fake)
        os.environ[objectives.DRY_RUN_ENV] = "1"
    run = Run(args)
    wanted = None if args.only is None else set(args.only.split(","))
    for name, fn in CHECKS:
        if wanted is None or name in wanted:
            run.check(name, fn)
    run.save()
    failed = [n for n, c in run.report["checks"].items() if not c.get("ok")]
    _log.info("failed checks: %s", ", ".join(failed) or "none")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
