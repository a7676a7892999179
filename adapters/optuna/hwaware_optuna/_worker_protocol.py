"""What a supervisor and its per-slot worker processes tell each other.

A worker process (``python -m hwaware_optuna._worker``) is started with the
slot's pinning environment. Its stdin carries, first, an 8-byte length and the
pickled :class:`WorkerSpec` envelope, then one control line per ticket request
(``go`` or ``stop``). It writes JSON lines to a dedicated pipe:

- ``{"type": "ready"}``: asks whether to run another trial;
- ``{"type": "start", "trial_id": .., "number": .., "retry": ..}``: a trial was placed;
- ``{"type": "end", "trial_id": .., "state": ..}``: the trial was told;
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
FAIL_REASON = _attrs.PREFIX + "fail_reason"
"""User attribute of a failed trial: ``crash: ...``, ``timeout: ...``, ``interrupted``,
``oom: ...`` or ``error: ...``."""
RETRY = _attrs.PREFIX + "retry"
"""User attribute of a re-enqueued trial: how many times its configuration was retried."""

GO = b"go\n"
STOP = b"stop\n"


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
