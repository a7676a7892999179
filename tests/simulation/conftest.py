"""A small synthetic trial table and device file for simulator and CLI tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

DEVICES = """
[[device]]
kind = "gpu"
name = "fast"
count = 2
memory_gb = 16
speed = 4.0
[device.speedup]
mlp = 10.0
svm = 1.0

[[device]]
kind = "cpu"
name = "cpu"
count = 1
slots = 6
speed = 1.0
"""


def write_table(path: Path, rows_per_subspace: int = 40, seed: int = 0) -> Path:
    """svm (fast, good), mlp (slow on CPU, good), rf (slow, bad)."""
    rng = np.random.default_rng(seed)
    spec = {"svm": ("svm", 0.1, 0.05), "mlp": ("mlp", 2.0, 0.04), "rf": ("rf", 1.0, 0.2)}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subspace", "family", "svm_C", "mlp_lr", "loss", "runtime_s", "wall_s"])
        for key, (family, runtime, loss) in spec.items():
            for _ in range(rows_per_subspace):
                c = f"{10 ** rng.uniform(-2, 2):.4g}" if key == "svm" else ""
                lr = f"{10 ** rng.uniform(-4, -1):.4g}" if key == "mlp" else ""
                value = min(1.0, loss * rng.lognormal(0, 0.5))
                writer.writerow(
                    [key, family, c, lr, f"{value:.5f}", runtime * rng.lognormal(0, 0.3), 1]
                )
    return path


@pytest.fixture()
def table_path(tmp_path: Path) -> Path:
    return write_table(tmp_path / "table.csv")


@pytest.fixture()
def devices_path(tmp_path: Path) -> Path:
    path = tmp_path / "devices.toml"
    path.write_text(DEVICES)
    return path
