"""The GPU validation script runs end to end against the simulated NVML (its --dry-run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu" / "validate.py"

pytest.importorskip("torch")
pytest.importorskip("optuna")
pytest.importorskip("hyperopt")


@pytest.mark.slow
def test_dry_run_passes_every_check(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path / "run"))
    env.pop("HWAWARE_FAKE_NVML", None)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--dry-run"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    report = json.loads((out / "gpu.json").read_text())
    checks = report["checks"]
    assert report["dry_run"] is True
    assert set(checks) == {"discovery", "pinning", "packing", "oom", "courtesy", "sgd",
                           "speedups"}
    failed = {name: c for name, c in checks.items() if not c["ok"]}
    assert not failed, proc.stderr[-3000:]
    assert proc.returncode == 0
    assert checks["oom"]["state"] == "oom" and checks["oom"]["memory_back"]
    assert checks["courtesy"]["foreign_processes"] >= 1
    assert not checks["courtesy"]["leased_with_defaults"]
    assert (out / checks["speedups"]["device_file"]).exists()
    assert (out / "validate.log").stat().st_size > 0


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "--out" in proc.stderr
