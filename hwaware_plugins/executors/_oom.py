"""Recognising accelerator out-of-memory failures and sizing the retry.

Both functions are pure and cheap; the worker process calls
:func:`is_oom_error` on the objective's exception, the executor calls
:func:`next_memory_need` to decide how much memory a re-placed task asks for.
"""

from __future__ import annotations

import math

_OOM_MESSAGES: tuple[str, ...] = (
    "cuda out of memory",
    "cuda error: out of memory",
    "hip out of memory",
)
# How deep to follow ``raise ... from ...`` chains; guards against cycles.
_MAX_CHAIN = 16


def _is_torch_oom_class(exc: BaseException) -> bool:
    # Matched by name so that checking never imports torch.
    return any(
        cls.__name__ == "OutOfMemoryError" and cls.__module__.split(".")[0] == "torch"
        for cls in type(exc).__mro__
    )


def is_oom_error(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) is an accelerator OOM.

    Recognised: ``torch.cuda.OutOfMemoryError`` (alias ``torch.OutOfMemoryError``)
    and any exception whose message contains "CUDA out of memory" or
    "CUDA error: out of memory" (case-insensitive), as older PyTorch and other
    libraries raise a plain ``RuntimeError``. Host ``MemoryError`` is not an
    accelerator OOM: a bigger GPU would not help. ``__cause__`` and
    ``__context__`` are followed, so wrapping the error keeps it recognisable.

    Cost: a few string checks per exception in the chain; never imports torch.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < _MAX_CHAIN:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if _is_torch_oom_class(current):
            return True
        message = str(current).lower()
        if any(text in message for text in _OOM_MESSAGES):
            return True
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


def next_memory_need(
    *,
    requested_mb: float | None,
    leased_mb: float | None,
    peak_mb: float | None,
    device_memory_mb: float | None,
    exclusive: bool,
    growth: float,
) -> int | None:
    """The memory (MiB) a task that ran out of memory asks for on its next placement.

    The base is the largest of what the task requested, what its lease
    reserved and the peak the worker measured; under exclusive packing the task
    had the whole device, so the device's memory counts too. The need is
    ``ceil(base * growth)``: with ``growth > 1`` and exclusive packing it is
    above the failed device's memory, so the pool can only choose a bigger
    device; with memory packing it reserves more, which lowers the packing.

    :return: the new need in MiB, or ``None`` when nothing is known to grow from
        (then the caller can only try another device).

    Cost: constant time.
    """
    candidates = [v for v in (requested_mb, leased_mb, peak_mb) if v is not None and v > 0]
    if exclusive and device_memory_mb is not None and device_memory_mb > 0:
        candidates.append(device_memory_mb)
    if not candidates:
        return None
    return math.ceil(max(candidates) * growth)
