"""Adaptive SGD on three simulated devices of different speeds (digits, CPU, ~1 minute).

Run: python examples/adaptive_sgd_digits.py [--epochs N]
Each rank is a process; slowdowns 1, 2 and 4 imitate a fast, a medium and a
slow device on the virtual clock. The loop is an ordinary PyTorch loop: the
only changes are ``sgd.rounds``/``rnd`` for the batches and ``sgd.step(loss)``.
"""

from __future__ import annotations

import argparse

import torch

from hwaware_plugins.cli._bench_sgd import digits_split
from hwaware_plugins.training import AdaptiveSGD, RankContext, accuracy, launch


def train(ctx: RankContext, policy: str, epochs: int) -> tuple[float, float]:
    """One rank: returns (final validation accuracy, virtual seconds)."""
    train_set, val_set = digits_split(seed=0)
    x, y = train_set.tensors
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.15, momentum=0.9)
    sgd = AdaptiveSGD(model, optimizer, num_samples=len(x), policy=policy, batch_size=32)
    for rnd in sgd.rounds(epochs=epochs):
        for idx in rnd:  # this rank's share of the round, handed out dynamically
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()  # type: ignore[no-untyped-call]
            sgd.step(loss)  # instead of optimizer.step()
        sgd.report(accuracy(model, val_set))  # after the merge: every rank has the same model
    return sgd.history[-1].value or 0.0, sgd.time_s


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="passes over the data (default 4)")
    options = parser.parse_args()
    for policy in ("sync", "adaptive"):
        acc, seconds = launch(
            train, world_size=3, slowdowns=[1, 2, 4], args=(policy, options.epochs)
        )[0]
        print(f"{policy:8s} accuracy {acc:.3f} after {seconds:.3f} virtual seconds")
