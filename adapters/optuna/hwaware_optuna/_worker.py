"""One per-slot worker process: ``python -m hwaware_optuna._worker MSG_FD [CPUS]``.

Started by a supervisor (:func:`hwaware_optuna.optimize`, ``hwaware worker``)
in a new session with the slot's pinning environment already set, so CUDA can
only ever see the slot's device. It applies the CPU affinity, reads its
:class:`~hwaware_optuna._worker_protocol.WorkerSpec` from stdin, joins the
study through the shared storage with a ``HardwareAwareSampler`` restricted to
its slot, and runs the trial each ticket names (protocol:
:mod:`hwaware_optuna._worker_protocol`). After each trial it kills the
processes the objective left running (those it did not have before the
trial), so they never outlive their trial. End-of-file on the control channel
means the supervisor died: the worker then kills its own process group.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

from hwaware_optuna._attrs import SUBSPACE
from hwaware_optuna._worker_oom import record_plan
from hwaware_optuna._worker_protocol import (
    FAIL_REASON,
    RETRY,
    WorkerSpec,
    encode,
    granted_trial,
)
from hwaware_plugins.executors._oom import is_oom_error
from hwaware_plugins.executors._payload import HEADER, loads
from hwaware_plugins.executors._strays import kill_strays, stray_processes

Send = Callable[[dict[str, Any]], None]


def _read_exact(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the supervisor closed the channel before sending the worker spec")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _control_reader(fd: int, commands: queue.SimpleQueue[bytes]) -> None:
    with os.fdopen(fd, "rb", buffering=0) as stream:
        buffer = b""
        while True:
            chunk = stream.read(4096)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                commands.put(line.strip())
    # The supervisor is gone: take the whole group (the objective's children too) down.
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def wrap_objective(
    spec: WorkerSpec, objective: Callable[[Any], Any], send: Send
) -> Callable[[Any], Any]:
    """The objective with the worker's bookkeeping: start message, slot, fail reason, OOM plan.

    It tells the supervisor the objective starts (the trial's clock for
    ``trial_timeout``); an objective that runs out of device memory gets its
    retry's memory need and the decision written on the trial
    (:func:`~hwaware_optuna._worker_oom.record_plan`).
    """
    import optuna

    def run(trial: optuna.trial.Trial) -> Any:
        send({"type": "objective", "trial_id": trial._trial_id,
              "subspace": trial.user_attrs.get(SUBSPACE)})
        # The worker's pool has one slot; record the supervisor's real slot instead.
        trial.set_user_attr("hwaware:slot_id", spec.slot_id)
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            oom = is_oom_error(exc)
            with contextlib.suppress(Exception):
                trial.set_user_attr(FAIL_REASON, f"{'oom' if oom else 'error'}: {_one_line(exc)}")
                if oom:
                    record_plan(trial, spec.device, spec.oom)
            raise

    return run


def build_sampler(spec: WorkerSpec) -> Any:
    """The slot's sampler; a retry queued by optuna's callbacks gets ``hwaware:retry`` set."""
    from hwaware_optuna._sampler import HardwareAwareSampler

    class _RetryMarkingSampler(HardwareAwareSampler):
        def before_trial(self, study: Any, trial: Any) -> None:
            history = trial.system_attrs.get("retry_history") or []
            super().before_trial(study, trial)
            if history and trial.user_attrs.get(RETRY) != len(history):
                study._storage.set_trial_user_attr(trial._trial_id, RETRY, len(history))

    sampler = _RetryMarkingSampler(
        devices=[spec.device],
        pool_name="worker",
        state_dir=spec.state_dir,
        skip_foreign_processes=False,
        packing="exclusive",
        **spec.sampler.kwargs,
    )
    if spec.sampler.reseed:
        sampler.reseed_rng()
    return sampler


def _collect(told: list[Any]) -> Callable[[Any, Any], None]:
    return lambda _study, frozen: told.append(frozen)


def run_trial(study: Any, trial_id: int, objective: Callable[[Any], Any],
              catch: tuple[type[Exception], ...]) -> list[Any]:
    """Run the RUNNING trial ``trial_id`` through ``study.optimize``; return what was told.

    ``study.optimize`` asks for a trial from optuna's queue: this study's
    queue is made to hand out exactly ``trial_id``, which the supervisor made
    RUNNING, so optuna's own trial loop (heartbeat, callbacks, tell) runs it.
    """
    told: list[Any] = []
    study._pop_waiting_trial_id = lambda: trial_id
    study.optimize(objective, n_trials=1, catch=catch, callbacks=[_collect(told)])
    return told


def serve(spec: WorkerSpec, commands: queue.SimpleQueue[bytes], send: Send) -> None:
    """Run the trial of each ``go`` until ``stop``; each trial is told through the storage.

    After each trial, the processes the objective left (those the worker did
    not have before it) get SIGTERM, then SIGKILL after ``spec.kill_grace_s``.
    """
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(spec.optuna_verbosity)
    if not callable(getattr(optuna.Study, "_pop_waiting_trial_id", None)):
        send({"type": "error", "message": f"optuna {optuna.__version__} lacks "
              "Study._pop_waiting_trial_id, which optimize needs; install optuna>=3.4,<6"})
        return
    try:
        study = optuna.load_study(
            study_name=spec.study_name, storage=spec.storage, sampler=build_sampler(spec),
        )
    except Exception as exc:
        send({"type": "error", "message": f"cannot join study {spec.study_name!r}: "
              f"{_one_line(exc)}"})
        return
    objective = wrap_objective(spec, spec.objective, send)
    while True:
        send({"type": "ready"})
        trial_id = granted_trial(commands.get())
        if trial_id is None:
            return
        before = {process.pid for process in stray_processes()}
        told = run_trial(study, trial_id, objective, spec.catch)
        kill_strays(before, grace_s=spec.kill_grace_s)
        for frozen in told:
            send({"type": "end", "trial_id": frozen._trial_id, "state": frozen.state.name})


def main(argv: list[str]) -> int:
    """Pin, read the spec, serve tickets; return the exit code."""
    if len(argv) not in (1, 2):
        print("usage: python -m hwaware_optuna._worker MSG_FD [CPUS]", file=sys.stderr)
        return 2
    if len(argv) == 2 and argv[1] and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(core) for core in argv[1].split(",")})
    out = os.fdopen(int(argv[0]), "wb", buffering=0)
    lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        with lock:
            out.write(encode(message))

    (size,) = HEADER.unpack(_read_exact(0, HEADER.size))
    envelope = pickle.loads(_read_exact(0, size))
    control = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    commands: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    threading.Thread(target=_control_reader, args=(control, commands), daemon=True).start()
    sys.path[:0] = [entry for entry in envelope["sys_path"] if entry not in sys.path]
    try:
        spec: WorkerSpec = loads(envelope["spec"])
    except Exception as exc:
        send({"type": "error", "message": f"cannot load the objective in the worker: "
              f"{_one_line(exc)}"})
        return 3
    serve(spec, commands, send)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
