"""The synthetic objective of the chaos benchmark: real crashes, OOM errors and hangs.

It runs in an executor's worker process and imports nothing heavy (no numpy,
no framework), so a worker starts fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hwaware_plugins.attrs import CHAOS_TRIAL, SLOT_ID
from hwaware_plugins.chaos._ledger import Ledger
from hwaware_plugins.chaos._plan import ChaosRates, fault_for, uniform
from hwaware_plugins.executors._retry import RETRY_MARK

LABEL_ENV = "HWAWARE_TASK_LABEL"
"""The executor tells the worker its task label here; the trial key is the part before ``#``."""

OOM_MESSAGE = (
    "CUDA out of memory. Tried to allocate 2.00 GiB (injected by the chaos benchmark)"
)
"""The message of an injected out-of-memory error (recognised by ``is_oom_error``)."""


def trial_key(label: str) -> str:
    """The trial a task label belongs to: the label up to the first ``#``."""
    return label.split(RETRY_MARK, 1)[0]


KEY_ATTR = CHAOS_TRIAL
"""User attribute holding the trial key on optuna trials (retries inherit it)."""

PARAM_NAMES: tuple[str, ...] = ("x", "y")
"""The parameters a chaos objective samples itself when given an optuna trial, in [-1, 1]."""


def synthetic_loss(params: Mapping[str, Any]) -> float:
    """A smooth loss with its minimum at every parameter equal to 0.3. Pure."""
    return float(sum((float(value) - 0.3) ** 2 for value in params.values()))


@dataclass(frozen=True)
class ChaosObjective:
    """A picklable objective that injects faults at the given rates, per attempt.

    Called in a worker with the trial's parameters. It reads its trial key from
    ``HWAWARE_TASK_LABEL`` (``key`` overrides it), records the attempt, its own
    pid and that of a ``sleep`` child it spawns (a process the executor must
    kill with the worker's group) in the run's :class:`Ledger`, claims its
    device slot (``HWAWARE_SLOT_ID``, else an optuna trial's
    ``hwaware:slot_id``) to detect double leases, works for
    ``work_s`` seconds, and then, as :func:`~hwaware_plugins.chaos._plan.fault_for`
    decides: dies (``os._exit(70)`` or SIGKILL to itself), raises an
    out-of-memory ``RuntimeError``, hangs for ``hang_s`` seconds, or returns
    :func:`synthetic_loss`.

    Cost: one ``fork``/``exec`` of ``sleep`` plus ``work_s`` seconds of sleep.

    :param run_dir: the run's ledger folder.
    :param rates: the fault rates per attempt.
    :param seed: fixes every draw.
    :param work_s: ``(low, high)`` seconds of work per attempt, drawn uniformly.
    :param hang_s: how long a hang lasts (far above the trial timeout).
    :param key: the trial key, when the task label does not carry it.
    :param spawn_child: spawn the ``sleep`` child (the leftover the executor must kill).
    """

    run_dir: str
    rates: ChaosRates
    seed: int = 0
    work_s: tuple[float, float] = (0.05, 0.2)
    hang_s: float = 3600.0
    key: str | None = None
    spawn_child: bool = True

    def __call__(self, params: Any) -> float:
        """Run one attempt; return the loss unless a fault was drawn.

        ``params`` is a mapping of parameter values, or an optuna trial (any
        object with ``suggest_float``): then :data:`PARAM_NAMES` are sampled
        and the key is the trial's :data:`KEY_ATTR` (set here on a first
        attempt, inherited by retries), so worker processes that run many
        trials (``hwaware_optuna.optimize``) are accounted per trial.
        """
        ledger = Ledger(self.run_dir)
        key = self.key or trial_key(os.environ.get(LABEL_ENV, "unlabelled"))
        slot = os.environ.get("HWAWARE_SLOT_ID", "")
        if hasattr(params, "suggest_float"):
            key, slot, params = _from_trial(params, slot)
        attempt = ledger.begin_attempt(key)
        ledger.record_process(os.getpid())
        if self.spawn_child:
            child = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL)
            ledger.record_process(child.pid)
        held = bool(slot) and ledger.claim_slot(slot)
        low, high = self.work_s
        time.sleep(low + (high - low) * uniform(self.seed, key, attempt, "work"))
        fault = fault_for(self.rates, self.seed, key, attempt)
        if fault == "crash":
            # The slot marker stays behind on purpose: a dead holder's marker is stale.
            if uniform(self.seed, key, attempt, "how") < 0.5:
                os._exit(70)
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "timeout":
            time.sleep(self.hang_s)
        if held:
            ledger.release_slot(slot)
        if fault == "oom":
            raise RuntimeError(OOM_MESSAGE)
        return synthetic_loss(params)


def _from_trial(trial: Any, slot: str) -> tuple[str, str, dict[str, float]]:
    attrs = trial.user_attrs
    key = attrs.get(KEY_ATTR)
    if key is None:
        key = f"optuna-trial-{trial.number}"
        trial.set_user_attr(KEY_ATTR, key)
    slot = slot or str(attrs.get(SLOT_ID) or "")
    params = {name: trial.suggest_float(name, -1.0, 1.0) for name in PARAM_NAMES}
    return str(key), slot, params
