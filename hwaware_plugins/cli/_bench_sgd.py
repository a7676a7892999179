"""``hwaware bench sgd``: time to a target accuracy of each training policy on digits.

Trains a small MLP on scikit-learn's bundled digits data set (no download)
with every policy on ``--workers`` CPU ranks whose ``--slowdowns`` simulate
heterogeneous devices on the virtual clock, and reports for each policy the
virtual time at which validation accuracy first reached the target, and the
final accuracy. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hwaware_plugins._progress import progress_bar
from hwaware_plugins.errors import ConfigError

POLICY_NAMES: tuple[str, ...] = ("sync", "adaptive", "ds-sync", "adasync")


@dataclass(frozen=True)
class SGDBenchConfig:
    """Settings of one benchmark run (see ``hwaware bench sgd --help``)."""

    workers: int = 3
    slowdowns: tuple[float, ...] = (1.0, 2.0, 4.0)
    target_accuracy: float = 0.95
    policies: tuple[str, ...] = POLICY_NAMES
    epochs: float = 6.0
    batch_size: int = 32
    lr: float = 0.15
    hidden: int = 64
    seed: int = 0
    device: str = "cpu"
    clock: str = "virtual"
    backend: str | None = None

    def validate(self) -> None:
        """Raise :class:`ConfigError` on an inconsistent setting."""
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if len(self.slowdowns) != self.workers:
            raise ConfigError(
                f"--slowdowns needs one factor per worker ({self.workers}), got {self.slowdowns}"
            )
        if min(self.slowdowns) <= 0:
            raise ConfigError(f"slowdowns must be positive, got {self.slowdowns}")
        if not 0 < self.target_accuracy <= 1:
            raise ConfigError(f"--target-accuracy must be in (0, 1], got {self.target_accuracy}")
        unknown = sorted(set(self.policies) - set(POLICY_NAMES))
        if unknown or not self.policies:
            raise ConfigError(f"unknown policies {unknown}; choose from {', '.join(POLICY_NAMES)}")
        if self.epochs <= 0 or self.batch_size < 1 or self.lr <= 0 or self.hidden < 1:
            raise ConfigError("--epochs, --batch-size, --lr and --hidden must be positive")
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"--device must be cpu or cuda, got {self.device!r}")


def digits_split(seed: int) -> tuple[Any, Any]:
    """Standardised digits as ``(train, validation)`` TensorDatasets (1347 / 450 samples)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ConfigError(
            'the sgd benchmark needs scikit-learn: pip install "hwaware-plugins[demo]"'
        ) from exc
    import torch

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1.0)
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    cut = 1347
    data = torch.utils.data.TensorDataset
    return data(x[:cut], y[:cut]), data(x[cut:], y[cut:])


def _train_policy(ctx: Any, config: SGDBenchConfig, policy: str) -> dict[str, Any]:
    import torch

    from hwaware_plugins.training import AdaptiveSGD, accuracy

    train, val = digits_split(config.seed)
    x, y = (t.to(ctx.device) for t in train.tensors)
    val = torch.utils.data.TensorDataset(*(t.to(ctx.device) for t in val.tensors))
    torch.manual_seed(config.seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, config.hidden), torch.nn.ReLU(), torch.nn.Linear(config.hidden, 10)
    ).to(ctx.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
    sgd = AdaptiveSGD(
        model, optimizer, num_samples=len(x), policy=policy, batch_size=config.batch_size,
        context=ctx, seed=config.seed,
    )
    for rnd in sgd.rounds(epochs=config.epochs):
        for idx in rnd:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()  # type: ignore[no-untyped-call]
            sgd.step(loss)
        sgd.report(accuracy(model, val))
    reached = [r.time_s for r in sgd.history if (r.value or 0.0) >= config.target_accuracy]
    return {
        "time_to_target_s": reached[0] if reached else None,
        "final_accuracy": sgd.history[-1].value,
        "time_s": sgd.history[-1].time_s,
        "rounds": len(sgd.history),
    }


def bench_rank(
    ctx: Any, config: SGDBenchConfig, show_progress: bool = False
) -> dict[str, dict[str, Any]]:
    """One rank of the benchmark: train with every policy in turn (run by ``launch``).

    Rank 0 (the calling process) draws a progress bar over the policies when
    ``show_progress`` is true and stderr is a terminal.
    """
    results: dict[str, dict[str, Any]] = {}
    quiet = not show_progress or ctx.rank != 0
    with progress_bar(len(config.policies), label="bench sgd", quiet=quiet) as bar:
        for policy in config.policies:
            bar.update(0, note=policy)
            results[policy] = _train_policy(ctx, config, policy)
            bar.update(note=policy)
    return results


def run_benchmark(config: SGDBenchConfig, *, show_progress: bool = False) -> dict[str, Any]:
    """Run the benchmark and return ``{"policies": {...}, "config": {...}}``.

    Cost: one process start per extra worker, then every policy's training
    (well under a minute per policy on one CPU core per worker).
    """
    config.validate()
    from hwaware_plugins.training import launch

    devices = None if config.device == "cpu" else ["cuda:0"] * config.workers
    results = launch(
        bench_rank,
        devices,
        world_size=None if devices else config.workers,
        slowdowns=config.slowdowns,
        clock=config.clock,
        backend=config.backend or ("gloo" if devices else None),
        args=(config, show_progress),
    )
    return {"policies": results[0], "config": asdict(config)}


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas: {text}") from exc


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``bench sgd``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sgd", help="time to target accuracy of adaptive SGD vs sync, DS-Sync, AdaSync"
    )
    parser.add_argument("--workers", type=int, default=3, help="ranks (CPU processes)")
    parser.add_argument("--slowdowns", type=_floats, default=None,
                        help="per-worker slowdown factors, e.g. 1,2,4 (default: all 1)")
    parser.add_argument("--target-accuracy", type=float, default=0.95)
    parser.add_argument("--policies", default=",".join(POLICY_NAMES),
                        help="comma-separated subset of " + ", ".join(POLICY_NAMES))
    parser.add_argument("--epochs", type=float, default=6.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.15, help="lr0 for the batch size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: every rank shares GPU 0 (gloo)")
    parser.add_argument("--clock", choices=("virtual", "real"), default="virtual",
                        help="slowdowns on a simulated clock, or real sleeps")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="also write the results to this JSON file")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print one line per policy, optionally write JSON."""
    config = SGDBenchConfig(
        workers=args.workers,
        slowdowns=args.slowdowns or (1.0,) * args.workers,
        target_accuracy=args.target_accuracy,
        policies=tuple(p.strip() for p in args.policies.split(",") if p.strip()),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        clock=args.clock,
    )
    report = run_benchmark(config, show_progress=not getattr(args, "quiet", False))
    for name, row in report["policies"].items():
        reached = row["time_to_target_s"]
        shown = "never" if reached is None else f"{reached:.4f} s"
        print(f"{name:9s} time to {config.target_accuracy:.3g}: {shown:>10s}   "
              f"final accuracy {row['final_accuracy']:.4f}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0
