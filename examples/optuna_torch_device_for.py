"""Tune a small PyTorch MLP on digits with Optuna; each trial trains on the device it was given.

The only hardware-aware lines are the sampler and, in the objective,
``device = torch_device_for(trial)``: the model and the data go there. On this
machine that is ``cpu``; on a node with GPUs the trials spread over them.

Two ways to run the trials:

- default: ``study.optimize(n_jobs=<slots>)``, one thread per device slot in
  this process (GPUs addressed by their physical index);
- ``--processes``: ``hwaware_optuna.optimize(study, objective, ...)``, one
  worker process per slot, each pinned to its device before CUDA starts
  (``CUDA_VISIBLE_DEVICES`` by UUID, CPU affinity), so ``torch_device_for``
  answers ``cuda:0`` in each of them.

    python examples/optuna_torch_device_for.py --trials 12 --epochs 10
    python examples/optuna_torch_device_for.py --processes
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
from collections import Counter
from typing import Any

import optuna
import torch
from hwaware_optuna import HardwareAwareSampler, optimize, torch_device_for
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from hwaware_plugins.hardware import resolve_devices

EPOCHS = 5
"""Training epochs per trial by default."""


def digits_tensors(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Digits as float tensors: (x_train, y_train, x_val, y_val), a seeded 75/25 split."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    xs = torch.tensor(x, dtype=torch.float32)[order] / 16.0
    ys = torch.tensor(y, dtype=torch.long)[order]
    cut = len(xs) * 3 // 4
    return xs[:cut], ys[:cut], xs[cut:], ys[cut:]


def objective(trial: optuna.trial.Trial, epochs: int = EPOCHS) -> float:
    """Validation error of an MLP whose width, depth, learning rate and batch size are tuned."""
    device = torch_device_for(trial)
    width = trial.suggest_int("width", 16, 256, log=True)
    depth = trial.suggest_int("depth", 1, 3)
    lr = trial.suggest_float("lr", 1e-3, 3e-1, log=True)
    batch_size = trial.suggest_categorical("batch_size", [16, 32, 64, 128])
    x_train, y_train, x_val, y_val = (t.to(device) for t in digits_tensors())
    torch.manual_seed(trial.number)
    layers: list[torch.nn.Module] = []
    inputs = 64
    for _ in range(depth):
        layers += [torch.nn.Linear(inputs, width), torch.nn.ReLU()]
        inputs = width
    model = torch.nn.Sequential(*layers, torch.nn.Linear(inputs, 10)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), device=device)
        for batch in order.split(batch_size):  # type: ignore[no-untyped-call]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        model.eval()
        with torch.no_grad():
            error = float((model(x_val).argmax(1) != y_val).float().mean())
        trial.report(error, epoch)
    trial.set_user_attr("torch_device", str(device))
    return error


def run_study(args: argparse.Namespace, storage: Any) -> optuna.Study:
    """Create the study on ``storage`` and run it in threads or pinned worker processes."""
    devices = resolve_devices(args.devices)
    study = optuna.create_study(storage=storage,
                                sampler=HardwareAwareSampler(devices=devices, seed=args.seed))
    train = functools.partial(objective, epochs=args.epochs)
    if args.processes:
        optimize(study, train, n_trials=args.trials, devices=devices)
    else:
        study.optimize(train, n_trials=args.trials, n_jobs=sum(max(1, d.slots) for d in devices))
    return study


def main(argv: list[str] | None = None) -> int:
    """Run the study in threads or (``--processes``) pinned worker processes; print placements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12, help="trials (default 12)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs (default {EPOCHS})")
    parser.add_argument("--devices", default=None,
                        help="declared-device TOML file (default: probe this machine)")
    parser.add_argument("--processes", action="store_true",
                        help="one pinned worker process per slot (hwaware_optuna.optimize)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.trials < 1 or args.epochs < 1:
        parser.error("--trials and --epochs must be at least 1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        # Worker processes join the study through its storage: a journal file here.
        storage = JournalStorage(JournalFileBackend(os.path.join(folder, "study.log")))
        study = run_study(args, storage if args.processes else None)
        trials = study.trials
        best = study.best_trial
    mode = "pinned worker processes" if args.processes else "threads"
    placed = Counter((t.user_attrs.get("hwaware:device_id"), t.user_attrs.get("torch_device"))
                     for t in trials)
    print(f"{len(trials)} trials in {mode}; (device, torch device) -> trials:")
    for (device_id, torch_device), count in sorted(placed.items(), key=str):
        print(f"  {device_id} -> {torch_device}: {count}")
    print(f"best validation error {best.value:.4f} with {best.params} "
          f"on {best.user_attrs.get('torch_device')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
