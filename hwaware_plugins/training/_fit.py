"""``fit``: the plain case in one call: model, dataset, policy, devices."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.training._callback import AdaptiveSGD, RoundRecord
from hwaware_plugins.training._dispatch import CostModel
from hwaware_plugins.training._launch import RankContext, launch
from hwaware_plugins.training._policies import Policy
from hwaware_plugins.training._torch import require_torch


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained model (rank 0's) and rank 0's round history."""

    model: Any
    history: list[RoundRecord] = field(default_factory=list)

    @property
    def time_s(self) -> float:
        """Training time in (virtual or real) seconds."""
        return self.history[-1].time_s if self.history else 0.0

    def time_to(self, target: float) -> float | None:
        """Time of the first round whose reported value reached ``target``, else ``None``."""
        for record in self.history:
            if record.value is not None and record.value >= target:
                return record.time_s
        return None


class _LocalOnly:
    """Holds a value for the calling process only; spawned ranks receive ``None``."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __getstate__(self) -> dict[str, Any]:
        return {"value": None}


def batch_of(dataset: Any, indices: Any) -> Any:
    """The samples at ``indices``: sliced tensors for a ``TensorDataset``, else collated."""
    tensors = getattr(dataset, "tensors", None)
    if tensors is not None:
        return tuple(t[indices] for t in tensors)
    from torch.utils.data import default_collate

    return default_collate([dataset[i] for i in indices.tolist()])


def accuracy(model: Any, dataset: Any, *, batch_size: int = 1024) -> float:
    """Fraction of ``(input, label)`` samples whose arg-max prediction is the label.

    Runs in eval mode without gradients, then restores the model's mode.
    Cost: one forward pass over the dataset.
    """
    import torch

    device = next(iter(model.parameters())).device
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            idx = torch.arange(start, min(start + batch_size, len(dataset)))
            x, y = batch_of(dataset, idx)[:2]
            correct += int((model(x.to(device)).argmax(dim=1) == y.to(device)).sum())
    model.train(was_training)
    return correct / max(1, len(dataset))


@dataclass(frozen=True)
class _FitSpec:
    model: Any
    dataset: Any
    val_dataset: Any
    policy: str | Policy
    optimizer: Any
    optimizer_options: Mapping[str, Any]
    loss_fn: Any
    metric: Callable[[Any, Any], float]
    epochs: float
    options: Mapping[str, Any]
    trial: _LocalOnly


def _fit_rank(ctx: RankContext, spec: _FitSpec) -> list[RoundRecord]:
    import torch

    model = spec.model.to(ctx.device)
    optimizer = (spec.optimizer or torch.optim.SGD)(model.parameters(), **spec.optimizer_options)
    loss_fn = spec.loss_fn or torch.nn.functional.cross_entropy
    sgd = AdaptiveSGD(
        model, optimizer, num_samples=len(spec.dataset), policy=spec.policy,
        trial=spec.trial.value if ctx.rank == 0 else None, context=ctx, **spec.options,
    )
    for rnd in sgd.rounds(epochs=spec.epochs):
        for idx in rnd:
            x, y = (t.to(ctx.device) for t in batch_of(spec.dataset, idx)[:2])
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            sgd.step(loss)
        if spec.val_dataset is not None:
            sgd.report(spec.metric(model, spec.val_dataset))
    return sgd.history


def fit(
    model: Any,
    dataset: Any,
    *,
    policy: str | Policy = "adaptive",
    devices: Sequence[str | Device] | None = None,
    world_size: int | None = None,
    slowdowns: Sequence[float] | None = None,
    clock: str = "virtual",
    backend: str | None = None,
    epochs: float = 1.0,
    batch_size: int = 32,
    optimizer: Any = None,
    optimizer_options: Mapping[str, Any] | None = None,
    loss_fn: Any = None,
    val_dataset: Any = None,
    metric: Callable[[Any, Any], float] = accuracy,
    trial: Any = None,
    seed: int = 0,
    round_samples: int | None = None,
    warmup_rounds: int = 0,
    cost: CostModel | None = None,
) -> FitResult:
    """Train ``model`` on ``dataset`` (``(input, label)`` samples) across devices.

    Starts one rank per device with :func:`launch`, runs the usual loop with
    :class:`AdaptiveSGD` under ``policy``, reports ``metric(model, val_dataset)``
    each round (so a ``trial`` can prune) and returns rank 0's trained model
    (``model`` itself, trained in place) and history. ``optimizer`` is an
    optimizer class (default ``torch.optim.SGD``) built with ``optimizer_options``
    (default ``lr=0.05, momentum=0.9``); ``loss_fn`` defaults to cross-entropy.
    Model, dataset and the callables must be picklable (spawned ranks get
    copies); the trial stays in this process. Cost: one process start per
    extra rank plus the training.

    :raises ConfigError: bad arguments. The trial framework's pruning exception
        propagates when the trial is pruned.
    """
    require_torch()
    if epochs <= 0:
        raise ConfigError(f"epochs must be > 0, got {epochs}")
    if val_dataset is None and trial is not None:
        raise ConfigError("a trial needs val_dataset= to report a metric each round")
    spec = _FitSpec(
        model=model, dataset=dataset, val_dataset=val_dataset, policy=policy,
        optimizer=optimizer,
        optimizer_options=dict(optimizer_options or {"lr": 0.05, "momentum": 0.9}),
        loss_fn=loss_fn, metric=metric, epochs=epochs,
        options={"batch_size": batch_size, "seed": seed, "round_samples": round_samples,
                 "warmup_rounds": warmup_rounds, "cost": cost},
        trial=_LocalOnly(trial),
    )
    results = launch(
        _fit_rank, devices, world_size, slowdowns=slowdowns, clock=clock, backend=backend,
        args=(spec,),
    )
    mine = next(r for r in results if r is not None)
    return FitResult(model=model, history=mine)
