"""Start one training rank per device: spawned processes on one host, or under torchrun.

Rank 0 runs in the calling process on the caller's own objects (so a trial
object, the caller's model and its return value need no pickling); ranks
1..N-1 are spawned processes that import ``fn`` by name and each unpickle a
private replica of the arguments (nothing is shared with the caller). All
ranks meet in a TCP key-value store the caller hosts, which also backs the
real-time shared cursor of adaptive dispatch.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from hwaware_plugins.errors import ConfigError, HwawareError
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.training._torch import require_torch

_log = logging.getLogger(__name__)

Clock = Literal["virtual", "real"]
CLOCKS: tuple[str, ...] = ("virtual", "real")


@dataclass(frozen=True)
class RankContext:
    """What one rank knows about the job; handed to the ``fn`` given to :func:`launch`.

    :param rank: this rank, ``0 <= rank < world_size``.
    :param world_size: number of ranks (one per device).
    :param device: this rank's ``torch.device``.
    :param slowdowns: every rank's slowdown factor (1.0 = the reference speed).
    :param clock: ``"virtual"`` (deterministic simulated time) or ``"real"`` (sleeps).
    :param store: a ``torch.distributed.Store`` shared by all ranks, or ``None``.
    :param backend: the ``torch.distributed`` backend in use.
    """

    rank: int
    world_size: int
    device: Any
    slowdowns: tuple[float, ...]
    clock: Clock = "virtual"
    store: Any = None
    backend: str = "gloo"

    @property
    def slowdown(self) -> float:
        """This rank's slowdown factor."""
        return self.slowdowns[self.rank]


_current: RankContext | None = None


def current_context() -> RankContext | None:
    """The context of the rank running in this process under :func:`launch`, else ``None``."""
    return _current


def _c10d() -> Any:
    """``torch.distributed``, typed loosely (its stores are not re-exported for mypy)."""
    import torch.distributed as dist

    return dist


@dataclass(frozen=True)
class _Job:
    world_size: int
    devices: tuple[str, ...]
    slowdowns: tuple[float, ...]
    clock: Clock
    backend: str
    timeout_s: float
    threads: int


def _device_name(device: str | Device) -> str:
    if isinstance(device, Device):
        if device.kind == "cpu":
            return "cpu"
        return f"cuda:{device.index or 0}"
    name = str(device)
    if name != "cpu" and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise ConfigError(f"a device must be 'cpu' or 'cuda:N' (or a Device), got {device!r}")
    return name


def _cuda_available() -> bool:
    torch = require_torch()
    return bool(torch.cuda.is_available())


def _under_torchrun() -> bool:
    return all(key in os.environ for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def _make_job(
    devices: Sequence[str | Device] | None,
    world_size: int | None,
    slowdowns: Sequence[float] | None,
    clock: str,
    backend: str | None,
    timeout_s: float,
    threads: int,
) -> _Job:
    env_world = int(os.environ["WORLD_SIZE"]) if _under_torchrun() else None
    if devices is not None:
        names = tuple(_device_name(d) for d in devices)
    elif world_size is not None or env_world is not None:
        n = world_size if world_size is not None else env_world
        assert n is not None
        if isinstance(n, bool) or not isinstance(n, int):
            raise ConfigError(f"world_size must be an integer >= 1, got {n!r}")
        if n < 1:
            raise ConfigError(f"world_size must be >= 1, got {n}")
        names = ("cpu",) * n
    else:
        raise ConfigError("launch needs devices=[...] or world_size=N (or to run under torchrun)")
    n = len(names)
    if n < 1 or (world_size is not None and world_size != n):
        raise ConfigError(f"got {n} devices but world_size={world_size}; pass one of the two")
    if env_world is not None and env_world != n:
        raise ConfigError(f"torchrun started {env_world} ranks but {n} devices were given")
    given = tuple(slowdowns) if slowdowns is not None else (1.0,) * n
    if len(given) != n or not all(
        isinstance(f, int | float) and not isinstance(f, bool) and math.isfinite(f) and f > 0
        for f in given
    ):
        raise ConfigError(
            f"need {n} finite positive slowdown factors (one per rank), got {list(given)}"
        )
    factors = tuple(float(f) for f in given)
    if clock not in CLOCKS:
        raise ConfigError(f"clock must be one of {', '.join(CLOCKS)}, got {clock!r}")
    if any(d.startswith("cuda") for d in names) and not _cuda_available():
        raise ConfigError(
            f"devices {list(names)} name a GPU but this torch has no CUDA device; use "
            "world_size=N CPU ranks (with slowdowns to simulate slower devices)"
        )
    if backend is None:
        backend = "nccl" if all(d.startswith("cuda") for d in names) else "gloo"
    if timeout_s <= 0 or threads < 1:
        raise ConfigError(f"timeout_s and threads must be positive, got {timeout_s}, {threads}")
    return _Job(n, names, factors, clock, backend, float(timeout_s), threads)  # type: ignore[arg-type]


def _run_rank(
    fn: Callable[..., Any], args: tuple[Any, ...], rank: int, job: _Job, store: Any
) -> Any:
    global _current
    torch = require_torch()
    import torch.distributed as dist

    threads = torch.get_num_threads()
    torch.set_num_threads(job.threads)
    device = torch.device(job.devices[rank])
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = timedelta(seconds=job.timeout_s)
    owns_group = not dist.is_initialized()
    hook = sys.excepthook  # init_process_group wraps it with a "[rank0]:" prefix
    if owns_group:
        dist.init_process_group(
            job.backend,
            store=_c10d().PrefixStore("pg", store),
            rank=rank,
            world_size=job.world_size,
            timeout=timeout,
        )
    _current = RankContext(
        rank=rank,
        world_size=job.world_size,
        device=device,
        slowdowns=job.slowdowns,
        clock=job.clock,
        store=_c10d().PrefixStore("hwaware", store),
        backend=job.backend,
    )
    try:
        result = fn(_current, *args)
        if owns_group and job.world_size > 1:
            _leave_together(dist)
        return result
    finally:
        _current = None
        if owns_group:
            dist.destroy_process_group()
            sys.excepthook = hook  # or every launch() in this process adds another prefix
        torch.set_num_threads(threads)


def _leave_together(dist: Any) -> None:
    """Wait for every rank before tearing the group down.

    A rank whose ``fn`` returns at once would otherwise close its connections
    while a peer is still completing gloo's connection mesh, and the peer fails
    with "Connection closed by peer". A peer that failed instead makes the
    barrier fail: that is ignored here, the peer reports its own error.
    """
    try:
        dist.barrier()
    except Exception:
        _log.debug("barrier before leaving failed; a peer reports why", exc_info=True)


def _child_main(payload: bytes, rank: int, job: _Job, port: int, queue: Any) -> None:
    """A spawned rank: unpickle its own replica of ``fn`` and the arguments, run, report.

    The arguments arrive as plain pickle bytes made in the caller before any rank
    ran, so each rank owns a private copy: no tensor storage is shared with the
    caller or with another rank. The result goes back as pickle bytes for the
    same reason.
    """
    try:
        fn, args = pickle.loads(payload)
        store = _c10d().TCPStore(
            "127.0.0.1", port, job.world_size, is_master=False,
            timeout=timedelta(seconds=job.timeout_s),
        )
        result = _run_rank(fn, args, rank, job, store)
        queue.put((rank, True, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)))
    except BaseException as exc:
        text = "".join(traceback.format_exception(exc))
        try:
            error: Any = pickle.dumps(exc)
        except Exception:
            error = None
        queue.put((rank, False, (f"{type(exc).__name__}: {exc}", text, error)))


def _replica_payload(fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    """``(fn, args)`` as plain pickle bytes: every spawned rank rebuilds its own replica.

    Plain :mod:`pickle` copies tensor data; ``torch.multiprocessing`` would move
    the caller's CPU tensors into shared memory and let every rank step the
    same storage. Cost: one serialisation of the arguments (not one per rank).

    :raises ConfigError: ``fn`` or an argument cannot be pickled.
    """
    try:
        return pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise ConfigError(
            f"cannot send {fn!r} and its args to the other ranks ({exc}); pass a "
            "module-level function and picklable arguments"
        ) from exc


def launch(
    fn: Callable[..., Any],
    devices: Sequence[str | Device] | None = None,
    world_size: int | None = None,
    *,
    slowdowns: Sequence[float] | None = None,
    clock: str = "virtual",
    backend: str | None = None,
    args: Sequence[Any] = (),
    timeout_s: float = 600.0,
    threads_per_rank: int = 1,
) -> list[Any]:
    """Run ``fn(ctx, *args)`` on one rank per device and return every rank's result.

    ``devices`` are ``"cpu"``, ``"cuda:N"`` or :class:`~hwaware_plugins.hardware.Device`
    objects (or give ``world_size=N`` CPU ranks). Backend: NCCL when every
    device is a GPU, else gloo. ``slowdowns`` (one per rank) simulate slower
    devices on the ``clock``: ``"virtual"`` for deterministic benchmarks,
    ``"real"`` (sleeps) for demos. Under torchrun (``RANK``/``WORLD_SIZE`` set)
    it runs only this process's rank and the returned list holds ``None`` for
    the others. ``fn`` must be importable by name (a module-level function) so
    spawned ranks can find it. Rank 0 gets ``args`` as given; every spawned
    rank gets its own copy, pickled once before any rank starts (plain pickle:
    CPU tensors are copied, never moved to shared memory), so no rank sees
    another's changes. ``timeout_s`` bounds every collective and store wait.
    Cost: one pickling of ``args``, and one process start (an interpreter plus
    torch) and unpickling per extra rank.

    :raises ConfigError: inconsistent arguments.
    :raises HwawareError: a spawned rank failed (its traceback is logged); when
        rank 0 failed only because that rank went away, the rank's own error is
        raised (from rank 0's). When rank 0's own code raised, that error is
        raised once the other ranks have had a few seconds to end.
    """
    job = _make_job(devices, world_size, slowdowns, clock, backend, timeout_s, threads_per_rank)
    torch = require_torch()
    import torch.distributed as dist

    if _under_torchrun() or dist.is_initialized():
        rank = int(os.environ.get("RANK", dist.get_rank() if dist.is_initialized() else 0))
        store = _c10d().TCPStore(
            os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), job.world_size,
            is_master=False, timeout=timedelta(seconds=job.timeout_s),
        )
        results: list[Any] = [None] * job.world_size
        results[rank] = _run_rank(fn, tuple(args), rank, job, store)
        return results

    store = _c10d().TCPStore(
        "127.0.0.1", 0, job.world_size, is_master=True, wait_for_workers=False,
        timeout=timedelta(seconds=job.timeout_s),
    )
    payload = _replica_payload(fn, tuple(args)) if job.world_size > 1 else b""
    mp = torch.multiprocessing.get_context("spawn")
    queue = mp.Queue()
    children = []
    for rank in range(1, job.world_size):
        child = mp.Process(target=_child_main, args=(payload, rank, job, store.port, queue))
        child.start()
        children.append(child)
    results = [None] * job.world_size
    own: BaseException | None = None
    try:
        results[0] = _run_rank(fn, tuple(args), 0, job, store)
    except BaseException as exc:
        own = exc
    # With rank 0 gone, the others may wait in a collective until their timeout:
    # give them a short grace only, then end them.
    wait_s = job.timeout_s if own is None else min(job.timeout_s, FAILED_RANK0_GRACE_S)
    failures = _collect(children, queue, results, wait_s)
    if own is not None:
        cause = [f for f in failures if not _is_communication_error(f)]
        if cause and _is_communication_error(own):
            raise cause[0] from own  # rank 0 only saw the connection drop
        raise own
    if failures:
        raise failures[0]
    return results


FAILED_RANK0_GRACE_S = 5.0
"""Seconds the other ranks get to end once rank 0 has raised."""


def _is_communication_error(error: BaseException) -> bool:
    """A collective or store failing because another rank went away (gloo, NCCL, store)."""
    import torch.distributed as dist

    kinds = tuple(k for k in (getattr(dist, "DistError", None),) if isinstance(k, type))
    text = str(error)
    return (isinstance(error, kinds) if kinds else False) or any(
        mark in text for mark in ("gloo", "Connection closed by peer", "Connection reset",
                                  "NCCL", "Timed out waiting", "Broken pipe")
    )


def _collect(
    children: list[Any], queue: Any, results: list[Any], timeout_s: float
) -> list[BaseException]:
    """Read every spawned rank's outcome, then join them; return their errors (rank order).

    The queue is drained before joining: a child blocks in ``put`` until its
    (possibly large) result is read.
    """
    import queue as queue_module
    import time

    failures: dict[int, BaseException] = {}
    pending = {rank: child for rank, child in enumerate(children, start=1)}
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        try:
            rank, ok, value = queue.get(timeout=0.2)
        except queue_module.Empty:
            for rank, child in list(pending.items()):
                if child.exitcode is not None and queue.empty():
                    failures[rank] = HwawareError(f"rank {rank} exited with code {child.exitcode}")
                    del pending[rank]
            continue
        pending.pop(rank, None)
        if ok:
            results[rank] = pickle.loads(value)
        else:
            failures[rank] = _child_error(rank, *value)
    for rank, child in enumerate(children, start=1):
        child.join(1.0 if rank in pending else timeout_s)
        if child.is_alive():
            child.terminate()
            child.join()
        if rank in pending:
            failures[rank] = HwawareError(f"rank {rank} did not finish within {timeout_s:g} s")
    return [failures[r] for r in sorted(failures)]


def _is_pruning(error: object) -> bool:
    """Whether ``error`` is a trial being pruned (ours or a framework's ``TrialPruned``)."""
    from hwaware_plugins.training._prune import PrunedError

    return isinstance(error, PrunedError) or type(error).__name__ == "TrialPruned"


def _child_error(rank: int, line: str, text: str, payload: bytes | None) -> BaseException:
    """Turn a spawned rank's failure report into the exception ``launch`` raises.

    A pruned trial is not a failure: it is returned as is and logged at debug
    level only. Any other error is logged with the rank's traceback.
    """
    error: Any = None
    if payload is not None:
        try:
            error = pickle.loads(payload)
        except Exception:
            error = None
    if _is_pruning(error):
        _log.debug("rank %d stopped: the trial was pruned", rank)
        return error  # type: ignore[no-any-return]
    _log.error("rank %d failed:\n%s", rank, text)
    if isinstance(error, HwawareError):
        return error
    first = line.splitlines()[0] if line else "unknown error"
    return HwawareError(f"rank {rank} failed: {first} (traceback logged)")
