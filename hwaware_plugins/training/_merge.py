"""Weighted model merging and gradient averaging over torch.distributed.

Optimizer-state policy at a merge (``"average"``, the default): every state
tensor shaped like its parameter (SGD momentum, Adam's moments) is averaged
with the same weights as the parameters, and scalar state (Adam's ``step``)
takes the maximum. Momentum is a running sum of gradients in parameter space,
so the merged ``(w, v)`` stays the same weighted combination as ``w`` alone:
merging after one step from a common start then equals a step with the
averaged gradient, and no accumulated velocity is thrown away at each merge.
``"reset"`` clears the state instead (what a fresh optimizer would have).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from hwaware_plugins.errors import ConfigError

OPTIMIZER_STATE_POLICIES: tuple[str, ...] = ("average", "reset")


def _is_float(tensor: Any) -> bool:
    return bool(tensor.is_floating_point() or tensor.is_complex())


def _params(optimizer: Any) -> Iterator[Any]:
    for group in optimizer.param_groups:
        yield from group["params"]


class ModelMerger:
    """Averages a model (parameters and buffers) and its optimizer state across ranks.

    One instance per (model, optimizer); every rank of the group must call
    :meth:`merge` together. Not thread-safe. Cost per merge: one all-reduce per
    tensor dtype plus one small all-reduce for integer and scalar state, and
    one tiny all-reduce until every rank has optimizer state.
    """

    def __init__(self, model: Any, optimizer: Any, *, optimizer_state: str = "average") -> None:
        if optimizer_state not in OPTIMIZER_STATE_POLICIES:
            raise ConfigError(
                f"optimizer_state must be one of {', '.join(OPTIMIZER_STATE_POLICIES)}, "
                f"got {optimizer_state!r}"
            )
        self.model = model
        self.optimizer = optimizer
        self.optimizer_state = optimizer_state
        self._state_everywhere = False

    def _state_ready(self, group: Any) -> list[Any]:
        """The parameters for which every rank of the group has optimizer state.

        A parameter that never gets a gradient (frozen, or an unused head) has
        none anywhere; it must not hold back the others' merge.
        """
        params = list(_params(self.optimizer))
        if self._state_everywhere:
            return params
        import torch
        import torch.distributed as dist

        device = params[0].device if params else None
        flags = torch.tensor(
            [1 if self.optimizer.state.get(p) else 0 for p in params], device=device
        )
        dist.all_reduce(flags, op=dist.ReduceOp.MIN, group=group)
        ready = [p for p, flag in zip(params, flags.tolist(), strict=True) if flag]
        if group is None and len(ready) == len(params):
            # Only a check by every rank may be remembered: all ranks then agree.
            self._state_everywhere = True
        return ready

    def _tensors(self, group: Any) -> tuple[list[Any], list[Any], list[Any]]:
        """(tensors to average, to take the max of, parameters whose state is included).

        The order is the same on every rank. Moments (state shaped like the
        parameter) are averaged; counters (``step``) take the maximum.
        """
        averaged = [p.data for p in self.model.parameters()]
        maxed: list[Any] = []
        for buffer in self.model.buffers():
            (averaged if _is_float(buffer) else maxed).append(buffer)
        if self.optimizer is None or self.optimizer_state != "average":
            return averaged, maxed, []
        ready = self._state_ready(group)
        for param in ready:
            state = self.optimizer.state[param]
            for key in sorted(state):
                value = state[key]
                if not hasattr(value, "shape"):
                    continue
                moment = key != "step" and value.shape == param.shape and _is_float(value)
                (averaged if moment else maxed).append(value)
        return averaged, maxed, ready

    def merge(self, weight: float, *, group: Any = None) -> None:
        """Replace the local model by ``sum_i weight_i * model_i`` over the group's ranks.

        ``weight`` is this rank's share; the group's weights must sum to 1.
        With the ``"average"`` policy, a parameter's optimizer state is merged
        only once every rank has some (before that, ranks that never stepped
        would have nothing to contribute); with ``"reset"`` it is cleared.
        """
        averaged, maxed, merged = self._tensors(group)
        _reduce(averaged, weight, group, op="sum")
        _reduce(maxed, 1.0, group, op="max")
        if self.optimizer is None:
            return
        if self.optimizer_state != "average":
            self.optimizer.state.clear()
            return
        kept = {id(p) for p in merged}
        for param in _params(self.optimizer):
            if id(param) not in kept:
                # Some rank has no state for it yet: everyone starts it over alike.
                self.optimizer.state.pop(param, None)


    def merge_buffers(self, *, group: Any = None) -> None:
        """Make the ranks' buffers agree: floating ones (BatchNorm running statistics)
        averaged, integer ones (``num_batches_tracked``) their maximum.

        For policies whose weights already agree (gradients averaged every step);
        every rank of the group must call it together. Cost: one all-reduce per
        buffer dtype; nothing without buffers.
        """
        import torch.distributed as dist

        floats: list[Any] = []
        ints: list[Any] = []
        for buffer in self.model.buffers():
            (floats if _is_float(buffer) else ints).append(buffer)
        _reduce(floats, 1.0 / dist.get_world_size(group), group, op="sum")
        _reduce(ints, 1.0, group, op="max")


def _reduce(tensors: Sequence[Any], weight: float, group: Any, *, op: str) -> None:
    """All-reduce ``tensors`` in place (``weight * t`` summed, or max), one call per dtype."""
    if not tensors:
        return
    import torch
    import torch.distributed as dist

    by_kind: dict[tuple[Any, Any], list[Any]] = {}
    for tensor in tensors:
        by_kind.setdefault((tensor.dtype, tensor.device), []).append(tensor)
    reduce_op = dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX
    for same in by_kind.values():
        flat = torch.cat([t.detach().reshape(-1) for t in same])
        if op == "sum":
            flat.mul_(weight)
        dist.all_reduce(flat, op=reduce_op, group=group)
        offset = 0
        for tensor in same:
            size = tensor.numel()
            tensor.copy_(flat[offset : offset + size].view_as(tensor))
            offset += size


def average_gradients(
    model: Any, weight: float, *, extras: Sequence[float] = (), group: Any = None
) -> list[float]:
    """Replace every gradient by ``sum_i weight_i * grad_i``; also reduce ``extras``.

    ``extras`` (e.g. the batch loss) ride in the same all-reduce, weighted the
    same way; their reduced values are returned. A missing gradient counts as
    zeros. Cost: one all-reduce of the model's size.
    """
    import torch
    import torch.distributed as dist

    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    pieces = [p.grad.reshape(-1) for p in params]
    dtype = pieces[0].dtype if pieces else torch.float32
    device = pieces[0].device if pieces else torch.device("cpu")
    pieces.append(torch.tensor(list(extras), dtype=dtype, device=device))
    flat = torch.cat(pieces).mul_(weight)
    dist.all_reduce(flat, group=group)
    offset = 0
    for p in params:
        size = p.grad.numel()
        p.grad.copy_(flat[offset : offset + size].view_as(p.grad))
        offset += size
    return [float(v) for v in flat[offset:].tolist()]


def broadcast_from_rank0(model: Any) -> None:
    """Copy rank 0's parameters and buffers to every rank (collective; one call per dtype)."""
    import torch
    import torch.distributed as dist

    tensors = [p.data for p in model.parameters()] + list(model.buffers())
    by_kind: dict[tuple[Any, Any], list[Any]] = {}
    for tensor in tensors:
        by_kind.setdefault((tensor.dtype, tensor.device), []).append(tensor)
    for same in by_kind.values():
        flat = torch.cat([t.detach().reshape(-1) for t in same])
        dist.broadcast(flat, src=0)
        offset = 0
        for tensor in same:
            tensor.copy_(flat[offset : offset + tensor.numel()].view_as(tensor))
            offset += tensor.numel()
