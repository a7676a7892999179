"""``AdaptiveSGD``: the callback a user-written PyTorch loop drives, one rank per device."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.training._clock import RealTimeline, VirtualTimeline
from hwaware_plugins.training._dispatch import CostModel, StoreCursor
from hwaware_plugins.training._launch import RankContext, current_context
from hwaware_plugins.training._merge import ModelMerger, broadcast_from_rank0
from hwaware_plugins.training._policies import Policy, PolicyRun
from hwaware_plugins.training._prune import check_trial, pruned_exception_for
from hwaware_plugins.training._shared import SampleStream, Shared
from hwaware_plugins.training._torch import require_torch


@dataclass(frozen=True)
class RoundRecord:
    """What happened in one round on this rank.

    :param round: the round's index.
    :param time_s: this rank's time (virtual or real seconds) after the merge.
    :param samples: stream positions consumed so far by all ranks together.
    :param batch_size: this rank's batch size during the round.
    :param updates: optimizer steps this rank took during the round.
    :param value: the metric passed to :meth:`AdaptiveSGD.report`, if any.
    """

    round: int
    time_s: float
    samples: int
    batch_size: int
    updates: int
    value: float | None = None


class Round:
    """One merge round: iterate it for this rank's index batches; the merge runs at its end.

    Breaking out early is allowed: the next round (or :meth:`AdaptiveSGD.report`)
    finishes this one. With the lock-step policies (sync, ds-sync, adasync),
    every rank must run the same number of steps, so break on all ranks or none.
    """

    def __init__(self, index: int, batches: Callable[[Callable[[], bool]], Iterator[Any]]) -> None:
        self.index = index
        self._stopped = False
        self.closed = False
        self._batches = batches(self.stop)

    def __iter__(self) -> Iterator[Any]:
        return self._batches

    def stop(self) -> bool:
        """Whether the round was told to stop handing out batches."""
        return self._stopped

    def close(self) -> None:
        """Stop taking batches and run the merge (idempotent)."""
        if self.closed:
            return
        self._stopped = True
        for _ in self._batches:
            pass
        self.closed = True


class AdaptiveSGD:
    """Heterogeneity-aware data-parallel training for a hand-written PyTorch loop.

    Replace ``optimizer.step()`` by ``sgd.step(loss)`` and iterate the sample
    indices it hands out::

        sgd = AdaptiveSGD(model, optimizer, num_samples=len(x), batch_size=32)
        for rnd in sgd.rounds(epochs=5):
            for idx in rnd:
                optimizer.zero_grad()
                loss = loss_fn(model(x[idx]), y[idx])
                loss.backward()
                sgd.step(loss)
            sgd.report(evaluate(model))        # optional; the trial may prune here

    :param policy: ``"adaptive"``, ``"sync"``, ``"ds-sync"``, ``"adasync"``, any
        registered policy name, or a policy object (e.g. ``DSSyncPolicy(group_size=4)``).
    :param num_samples: size of the training set (indices are ``0..num_samples-1``).
    :param batch_size: initial per-rank batch size.
    :param round_samples: samples per merge round ``M`` (default ``4 * N * batch_size``).
    :param lr: base learning rate ``lr0`` (default: the optimizer's current lr).
    :param b_ref: batch size ``lr0`` is meant for (default ``batch_size``); the
        lr used is ``lr0 * samples_per_update / b_ref``.
    :param warmup_rounds: linear lr warm-up over this many rounds.
    :param optimizer_state: ``"average"`` (merged with the model's weights) or ``"reset"``.
    :param cost: the virtual clock's :class:`CostModel` (default: ``CostModel()``).
    :param trial: an object with ``report(value, step)`` and ``should_prune()``
        (used on rank 0).
    :param context: the rank's :class:`RankContext` (default: the one
        :func:`launch` set, else the default process group on a virtual clock).
    :param seed: seeds the sample order (identical on every rank).

    Arguments are validated on first use. Every call that merges is collective:
    all ranks must drive their loops alike. Not thread-safe.
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        *,
        num_samples: int,
        policy: str | Policy = "adaptive",
        batch_size: int = 32,
        round_samples: int | None = None,
        lr: float | None = None,
        b_ref: int | None = None,
        warmup_rounds: int = 0,
        optimizer_state: str = "average",
        cost: CostModel | None = None,
        trial: Any = None,
        context: RankContext | None = None,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.num_samples = num_samples
        self.policy = policy
        self.batch_size = batch_size
        self.round_samples = round_samples
        self.lr = lr
        self.b_ref = b_ref
        self.warmup_rounds = warmup_rounds
        self.optimizer_state = optimizer_state
        self.cost = cost
        self.trial = trial
        self.context = context
        self.seed = seed
        self.history: list[RoundRecord] = []
        self._shared: Shared | None = None
        self._run: PolicyRun | None = None
        self._round: Round | None = None

    # -- set-up ---------------------------------------------------------------------------

    def _context(self) -> RankContext:
        require_torch()
        import torch.distributed as dist

        ctx = self.context or current_context()
        if ctx is not None:
            return ctx
        if not dist.is_available() or not dist.is_initialized():
            raise ConfigError(
                "AdaptiveSGD needs a process group: run it under "
                "hwaware_plugins.training.launch(...) or torchrun, or pass context="
            )
        world = dist.get_world_size()
        first = next(iter(self.model.parameters()), None)
        if first is None:
            raise ConfigError("the model has no parameters: there is nothing to train")
        return RankContext(dist.get_rank(), world, first.device, (1.0,) * world)

    def _validate(self, ctx: RankContext) -> None:
        ints = {"num_samples": self.num_samples, "batch_size": self.batch_size}
        if self.round_samples is not None:
            ints["round_samples"] = self.round_samples
        if self.b_ref is not None:
            ints["b_ref"] = self.b_ref
        for name, value in ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an int, got {self.seed!r}")
        warmup = self.warmup_rounds
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ConfigError(f"warmup_rounds must be an int >= 0, got {warmup!r}")
        if self.lr is not None and (
            isinstance(self.lr, bool) or not isinstance(self.lr, int | float)
            or not math.isfinite(self.lr) or self.lr <= 0
        ):
            raise ConfigError(f"lr must be a finite number > 0, got {self.lr!r}")
        if ctx.clock not in ("virtual", "real"):
            raise ConfigError(f"clock must be 'virtual' or 'real', got {ctx.clock!r}")
        if self.trial is not None:
            check_trial(self.trial)

    def _policy(self) -> Policy:
        if isinstance(self.policy, str):
            from hwaware_plugins._manager import load

            return load("policy", self.policy)  # type: ignore[no-any-return]
        if not hasattr(self.policy, "start"):
            raise ConfigError(f"policy must be a name or a policy object, got {self.policy!r}")
        return self.policy

    def _setup(self) -> tuple[Shared, PolicyRun]:
        if self._shared is not None and self._run is not None:
            return self._shared, self._run
        ctx = self._context()
        self._validate(ctx)
        policy = self._policy()
        cost = self.cost if self.cost is not None else CostModel()
        cost.validate()
        lr0 = float(self.lr if self.lr is not None else self.optimizer.param_groups[0]["lr"])
        first = next(iter(self.model.parameters()), None)
        if first is None:
            raise ConfigError("the model has no parameters: there is nothing to train")
        device = first.device
        instance = _instance_id(device)
        broadcast_from_rank0(self.model)
        shared = Shared(
            rank=ctx.rank,
            world_size=ctx.world_size,
            model=self.model,
            optimizer=self.optimizer,
            merger=ModelMerger(self.model, self.optimizer, optimizer_state=self.optimizer_state),
            stream=SampleStream(self.num_samples, self.seed),
            batch_size=self.batch_size,
            b_ref=self.b_ref or self.batch_size,
            lr0=lr0,
            warmup_rounds=self.warmup_rounds,
            round_samples=self.round_samples or 4 * ctx.world_size * self.batch_size,
            seed=self.seed,
            device=device,
        )
        if ctx.clock == "virtual":
            shared.virtual = VirtualTimeline(ctx.slowdowns, cost)
        else:
            shared.real = RealTimeline(ctx.slowdown)
            if ctx.store is not None:
                shared.cursor = StoreCursor(ctx.store, f"sgd{instance}")
            elif getattr(policy, "name", "") == "adaptive":
                raise ConfigError(
                    "adaptive dispatch on the real clock needs a shared store: run under "
                    "launch(...) or pass context=RankContext(..., store=...)"
                )
        self._shared, self._run = shared, policy.start(shared)
        return shared, self._run

    # -- the loop -------------------------------------------------------------------------

    def rounds(self, *, epochs: float | None = None, rounds: int | None = None) -> Iterator[Round]:
        """Yield the merge rounds: ``rounds`` of them, or enough to cover ``epochs`` passes.

        Cost: set-up on the first call (a broadcast of the model; ds-sync also
        creates its process groups), then one merge per round.
        """
        shared, run = self._setup()
        if (epochs is None) == (rounds is None):
            raise ConfigError("pass exactly one of epochs= or rounds=")
        length = run.round_length()
        if rounds is None:
            assert epochs is not None
            if isinstance(epochs, bool) or not isinstance(epochs, int | float) or not (
                math.isfinite(epochs) and epochs > 0
            ):
                raise ConfigError(f"epochs must be a finite number > 0, got {epochs!r}")
            rounds = math.ceil(epochs * self.num_samples / length)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
            raise ConfigError(f"rounds must be an int >= 0, got {rounds!r}")
        base = self.history[-1].samples if self.history else 0
        first = self.history[-1].round + 1 if self.history else 0
        for index in range(first, first + rounds):
            self._round = Round(index, functools.partial(run.batches, index, base))
            yield self._round
            self._finish_round(run, shared, base + length)
            base += length

    def _finish_round(self, run: PolicyRun, shared: Shared, samples: int) -> None:
        current = self._round
        if current is None or current.closed:
            return
        current.close()
        self.history.append(
            RoundRecord(current.index, shared.now(), samples, run.batch_size, run.updates)
        )

    def step(self, loss: Any = None) -> None:
        """Use instead of ``optimizer.step()`` after ``loss.backward()``.

        ``loss`` (a tensor or float) is needed by the adasync policy only.
        """
        if self._run is None or self._round is None or self._round.closed:
            raise ConfigError("step() is only valid inside a round: iterate sgd.rounds(...)")
        self._run.step(loss)

    def report(self, value: float) -> None:
        """Record the round's validation metric; rank 0 reports it to the trial.

        Collective (a one-element broadcast): call it on every rank. Raises the
        trial framework's pruning exception (``optuna.TrialPruned``) on every
        rank when the trial should be pruned, else returns.
        """
        import torch
        import torch.distributed as dist

        if self._round is None or self._shared is None or self._run is None:
            raise ConfigError("report() is only valid after a round: iterate sgd.rounds(...)")
        if not self._round.closed:
            self._finish_round(self._run, self._shared, self._current_samples())
        record = dataclasses.replace(self.history[-1], value=float(value))
        self.history[-1] = record
        flag = torch.zeros(1, dtype=torch.int32, device=self._shared.device)
        if self._shared.rank == 0 and self.trial is not None:
            self.trial.report(float(value), record.round)
            flag[0] = int(bool(self.trial.should_prune()))
        dist.broadcast(flag, src=0)
        if int(flag.item()):
            error = pruned_exception_for(self.trial) if self.trial is not None else None
            from hwaware_plugins.training._prune import PrunedError

            raise (error or PrunedError)(
                f"trial pruned at round {record.round} (value {value:.6g})"
            )

    def _current_samples(self) -> int:
        assert self._run is not None
        previous = self.history[-1].samples if self.history else 0
        return previous + self._run.round_length()

    @property
    def time_s(self) -> float:
        """This rank's time in seconds (virtual or real) since training started."""
        return self._shared.now() if self._shared is not None else 0.0

    @property
    def current_lr(self) -> float:
        """The learning rate in use this round."""
        return self._shared.lr if self._shared is not None else 0.0


def _instance_id(device: Any) -> int:
    """A number every rank agrees on, distinct per callback in this job (collective)."""
    global _instances
    import torch
    import torch.distributed as dist

    value = torch.tensor([_instances], dtype=torch.int64, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    _instances = int(value.item()) + 1
    return _instances - 1


_instances = 0
