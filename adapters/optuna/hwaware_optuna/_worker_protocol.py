"""What a supervisor and its per-slot worker processes tell each other.

A worker process (``python -m hwaware_optuna._worker``) is started with the
slot's pinning environment. Its stdin carries, first, an 8-byte length and the
pickled :class:`WorkerSpec` envelope, then one control line per ticket request:
``go TRIAL_ID`` (run that trial, which the supervisor already made RUNNING and
stamped with the worker's pid) or ``stop``. It writes JSON lines to a
dedicated pipe:

- ``{"type": "ready"}``: asks whether to run another trial;
- ``{"type": "objective", "trial_id": ..}``: the trial was placed and its
  objective starts now (the trial's clock for ``trial_timeout`` starts here);
- ``{"type": "end", "trial_id": .., "state": ..}``: the trial was told and the
  processes its objective spawned were killed;
- ``{"type": "error", "message": ..}``: it cannot run at all (then it exits).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hwaware_optuna import _attrs
from hwaware_plugins.hardware import Device

NODE = _attrs.PREFIX + "node"
"""User attribute: the node (``hwaware worker --node``, default its devices' host) that ran it."""
WORKER_PID = _attrs.PREFIX + "worker_pid"
"""User attribute: the process id of the worker process that ran the trial."""
WORKER_STARTED = _attrs.PREFIX + "worker_started"
"""User attribute: ``[create time, start ticks or None]`` of that worker process, so a
restart on the same node can tell it died even when its pid was reused."""
MEMORY_NEED = _attrs.PREFIX + "memory_need_mb"
"""User attribute: device memory (MiB) the trial needs after running out of memory;
only a device whose memory budget holds it takes the trial's retry."""
OOM_ACTION = _attrs.PREFIX + "oom_action"
"""User attribute of a trial that ran out of device memory: what happens next
(``re-placing with N MiB`` or ``not re-placed: ...``)."""
FAIL_REASON = _attrs.PREFIX + "fail_reason"
"""User attribute of a failed trial: ``crash: ...``, ``timeout: ...``, ``interrupted``,
``oom: ...`` or ``error: ...``."""
RETRY = _attrs.PREFIX + "retry"
"""User attribute of a re-enqueued trial: how many times its configuration was retried."""

STOP = b"stop\n"


def go(trial_id: int) -> bytes:
    """The control line granting the worker the (already RUNNING) trial ``trial_id``."""
    return f"go {trial_id}\n".encode()


def granted_trial(line: bytes) -> int | None:
    """The trial id of a ``go`` control line, ``None`` for any other line."""
    command, _, value = line.partition(b" ")
    if command != b"go":
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class OomPolicy:
    """How a worker sizes the retry of a trial that ran out of device memory.

    :param max_retries: retries a trial may have (``optimize(max_retries=)``).
    :param growth: factor by which the memory need grows (> 1).
    :param memory_fraction: share of a device's free memory a trial may use
        (the node pool's ``memory_fraction``).
    :param devices: the node's devices, to tell whether any could take the retry.
    """

    max_retries: int = 0
    growth: float = 1.5
    memory_fraction: float = 0.95
    devices: tuple[Device, ...] = ()


@dataclass(frozen=True)
class SamplerSettings:
    """How a worker builds its slot's ``HardwareAwareSampler`` (keyword arguments).

    ``reseed`` asks the worker to call ``reseed_rng()`` on it (a shared base
    sampler without a seed of its own, as optuna does for ``n_jobs > 1``).
    """

    kwargs: dict[str, Any]
    reseed: bool


@dataclass(frozen=True)
class WorkerSpec:
    """Everything one worker process needs; pickled with cloudpickle.

    :param storage: the optuna storage object (RDB, journal) shared by all workers.
    :param study_name: the study the worker joins.
    :param objective: the user's objective.
    :param sampler: how to build the slot's sampler.
    :param device: the slot's device (``slots=1``).
    :param slot_id: the supervisor's lease slot, recorded as ``hwaware:slot_id``.
    :param node: recorded as ``hwaware:node``.
    :param state_dir: a private folder for the worker's one-slot pool.
    :param catch: exception types that fail a trial without stopping the worker.
    :param optuna_verbosity: the supervisor's ``optuna.logging`` level, applied in the worker.
    :param oom: how an out-of-memory trial's retry is sized.
    :param kill_grace_s: SIGTERM-to-SIGKILL delay for what a trial's objective left running.
    """

    storage: Any
    study_name: str
    objective: Any
    sampler: SamplerSettings
    device: Device
    slot_id: str
    node: str
    state_dir: str
    catch: tuple[type[Exception], ...] = field(default=(Exception,))
    optuna_verbosity: int = 20
    oom: OomPolicy = field(default_factory=OomPolicy)
    kill_grace_s: float = 3.0


def encode(message: dict[str, Any]) -> bytes:
    """One JSON line."""
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def decode_lines(buffer: bytearray) -> list[dict[str, Any]]:
    """Take the complete JSON lines out of ``buffer`` (the rest stays); bad lines are skipped."""
    messages: list[dict[str, Any]] = []
    while True:
        end = buffer.find(b"\n")
        if end < 0:
            return messages
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            messages.append(value)
