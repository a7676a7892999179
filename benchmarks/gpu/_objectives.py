"""Trial objectives for ``validate.py``: what a trial sees of its GPU, a small model, an OOM.

Module-level functions, so worker processes import them by name. ``HWAWARE_GPU_DRY_RUN=1``
makes them run on the CPU with tiny sizes (the simulated-NVML dry run).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

DRY_RUN_ENV = "HWAWARE_GPU_DRY_RUN"


def dry_run() -> bool:
    """True when the script runs against the simulated NVML on the CPU."""
    return os.environ.get(DRY_RUN_ENV) == "1"


def torch_device() -> str:
    """``cuda`` on a real GPU run, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() and not dry_run() else "cpu"


def visible_device() -> dict[str, Any]:
    """What this process sees: CUDA_VISIBLE_DEVICES, torch's device count and UUID."""
    import torch

    seen: dict[str, Any] = {
        "pid": os.getpid(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "hwaware_device_id": os.environ.get("HWAWARE_DEVICE_ID"),
        "torch_device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
    }
    if seen["torch_device_count"]:
        props = torch.cuda.get_device_properties(0)
        seen["torch_name"] = props.name
        uuid = getattr(props, "uuid", None)
        seen["torch_uuid"] = None if uuid is None else "GPU-" + str(uuid)
    return seen


def _digits() -> tuple[Any, Any]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    return x, data.target.astype(np.int64)


def train_small_model(hidden: int, epochs: int, seed: int = 0) -> dict[str, float]:
    """Train a small MLP on the 8x8 digits on this process's device; loss and peak memory."""
    import torch

    device = torch_device()
    torch.manual_seed(seed)
    x_np, y_np = _digits()
    x = torch.from_numpy(x_np).to(device)
    y = torch.from_numpy(y_np).to(device)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(), torch.nn.Linear(hidden, 10),
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    for _ in range(epochs):
        for batch in torch.split(torch.randperm(len(x), device=device), 64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    with torch.no_grad():
        accuracy = float((model(x).argmax(1) == y).float().mean())
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0.0
    return {"loss": 1.0 - accuracy, "train_s": time.perf_counter() - started, "peak_mb": peak}


def optuna_small_model(trial: Any) -> float:
    """An Optuna trial training the small model; records what it saw."""
    hidden = trial.suggest_categorical("hidden", [64, 128, 256])
    epochs = 1 if dry_run() else int(os.environ.get("HWAWARE_GPU_EPOCHS", "20"))
    result = train_small_model(hidden, epochs, seed=trial.number)
    for key, value in visible_device().items():
        trial.set_user_attr(f"seen_{key}", value)
    trial.set_user_attr("train_s", result["train_s"])
    return result["loss"]


def hyperopt_visible(point: dict[str, Any]) -> dict[str, Any]:
    """A Hyperopt evaluation that reports what it saw."""
    return {"loss": float(point["x"]) ** 2, "status": "ok", "seen": visible_device()}


def allocate_past_free(factor: float = 1.5) -> float:
    """Allocate ``factor`` x the GPU's free memory: a real CUDA OOM (simulated in a dry run)."""
    if dry_run():
        raise RuntimeError("CUDA out of memory. Tried to allocate 9.00 GiB (simulated dry run)")
    import torch

    free, _total = torch.cuda.mem_get_info()
    block = torch.empty(int(free * factor), dtype=torch.uint8, device="cuda")
    return float(block.numel())


def hold_memory(megabytes: int, seconds: float) -> None:
    """A foreign process: hold ``megabytes`` on the GPU for ``seconds``."""
    import torch

    block = torch.empty(megabytes * 2**20, dtype=torch.uint8, device="cuda")
    block.fill_(1)
    time.sleep(seconds)
