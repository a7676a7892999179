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


def merge_with_a_frozen_and_a_scalar_parameter(ctx: RankContext) -> dict[str, Any]:
    """A frozen bias (no state anywhere) and a 0-d parameter under Adam; ranks step 1 / 3 times."""
    from hwaware_plugins.training._merge import ModelMerger

    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    model.bias.requires_grad_(False)
    scale = torch.nn.Parameter(torch.tensor(1.0))
    optimizer = torch.optim.Adam([*model.parameters(), scale], lr=0.1)
    for _ in range(1 + 2 * ctx.rank):
        optimizer.zero_grad()
        (model(torch.ones(1, 2)).sum() * scale).backward()
        optimizer.step()
    ModelMerger(model, optimizer).merge(0.5)
    weight_state = optimizer.state[model.weight]
    return {
        "weight_state": sorted(weight_state),
        "weight_step": float(weight_state["step"]),
        "scale_step": float(optimizer.state[scale]["step"]),
        "bias_state": dict(optimizer.state.get(model.bias, {})),
    }


def lr_of_groups_and_schedule(ctx: RankContext) -> dict[str, Any]:
    """Two groups (0.1, 0.001) and a StepLR halving per round: the rates each round used."""
    from hwaware_plugins.training import AdaptiveSGD

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    optimizer = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.1},
                                 {"params": model[1].parameters(), "lr": 0.001}])
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    sgd = AdaptiveSGD(model, optimizer, num_samples=64, batch_size=16)
    used = []
    for batches in sgd.rounds(rounds=3):
        for index in batches:
            used.append(tuple(round(g["lr"], 6) for g in optimizer.param_groups))
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            sgd.step()
        schedule.step()
    return {"rates": sorted(set(used), reverse=True)}


def fail_on(ctx: RankContext, failing: int) -> float:
    """Rank ``failing`` raises at once; the others wait for it in a collective."""
    import torch.distributed as dist

    if ctx.rank == failing:
        raise ValueError(f"user bug on rank {failing}")
    value = torch.ones(1)
    dist.all_reduce(value)
    return float(value)


def batch_norm_statistics(ctx: RankContext, policy: str) -> float:
    """Train a model with BatchNorm for two rounds; this rank's running mean, summed."""
    from hwaware_plugins.training import AdaptiveSGD

    torch.manual_seed(0)
    x, y = torch.randn(128, 8), torch.randint(0, 2, (128,))
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sgd = AdaptiveSGD(model, optimizer, num_samples=128, batch_size=16, policy=policy)
    for batches in sgd.rounds(rounds=2):
        for index in batches:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
            loss.backward()
            sgd.step(loss)
    return float(model[1].running_mean.sum())


def misuse_messages(ctx: RankContext) -> list[str]:
    """The errors of AdaptiveSGD's bad arguments, in order."""
    from hwaware_plugins.errors import ConfigError
    from hwaware_plugins.training import AdaptiveSGD

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    messages = []
    attempts = [
        lambda: next(AdaptiveSGD(model, optimizer, num_samples=8, batch_size=4).rounds(
            rounds=1.5)),  # type: ignore[arg-type]
        lambda: next(AdaptiveSGD(model, optimizer, num_samples=8, batch_size=4).rounds(
            epochs=float("nan"))),
        lambda: next(AdaptiveSGD(model, optimizer, num_samples=8, batch_size=4, seed="x").rounds(
            rounds=1)),  # type: ignore[arg-type]
        lambda: next(AdaptiveSGD(model, optimizer, num_samples=8, batch_size=4, lr=-0.1).rounds(
            rounds=1)),
        lambda: next(AdaptiveSGD(torch.nn.Sequential(), optimizer, num_samples=8,
                                 batch_size=4).rounds(rounds=1)),
    ]
    for attempt in attempts:
        try:
            attempt()
        except ConfigError as exc:
            messages.append(str(exc))
    return messages
