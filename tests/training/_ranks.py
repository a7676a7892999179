"""Rank functions the launch tests run (module level, so spawned ranks can import them)."""

from __future__ import annotations

from typing import Any

import torch

from hwaware_plugins.cli._bench_sgd import digits_split
from hwaware_plugins.training import AdaptiveSGD, RankContext, accuracy


def train_digits(ctx: RankContext, policy: str, epochs: float) -> dict[str, Any]:
    """Train the digits MLP with ``policy``; return accuracy, steps and times."""
    train, val = digits_split(0)
    x, y = train.tensors
    torch.manual_seed(ctx.rank)  # different inits: the broadcast must align them
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sgd = AdaptiveSGD(model, optimizer, num_samples=len(x), policy=policy, batch_size=32)
    steps = 0
    for rnd in sgd.rounds(epochs=epochs):
        for idx in rnd:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()  # type: ignore[no-untyped-call]
            sgd.step(loss)
            steps += 1
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
    return {
        "accuracy": accuracy(model, val),
        "steps": steps,
        "time_s": sgd.time_s,
        "checksum": checksum,
        "history": sgd.history,
    }


def train_every_policy(ctx: RankContext, epochs: float) -> dict[str, dict[str, Any]]:
    """``train_digits`` for each built-in policy in one set of ranks."""
    return {p: train_digits(ctx, p, epochs) for p in ("adaptive", "sync", "ds-sync", "adasync")}


def merge_state(ctx: RankContext, optimizer_state: str) -> dict[str, Any]:
    """Give each rank different weights and momentum, merge with weights 0.25/0.75."""
    from hwaware_plugins.training._merge import ModelMerger

    model = torch.nn.Linear(2, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with torch.no_grad():
        model.weight.fill_(float(ctx.rank + 1))  # rank 0: 1, rank 1: 2
    model.weight.grad = torch.full_like(model.weight, float(ctx.rank + 1))
    optimizer.step()  # weight 0.9 / 1.8, momentum buffer = grad 1 / 2
    merger = ModelMerger(model, optimizer, optimizer_state=optimizer_state)
    merger.merge([0.25, 0.75][ctx.rank])
    buffer = optimizer.state[model.weight].get("momentum_buffer")
    return {
        "weight": model.weight.detach()[0].tolist(),
        "momentum": None if buffer is None else buffer[0].tolist(),
    }


def add_on_rank1(ctx: RankContext, t: torch.Tensor) -> float:
    """Rank 1 adds 100 to its ``t`` in place; every rank returns the sum it sees."""
    if ctx.rank == 1:
        t.add_(100.0)
    return float(t.sum())
