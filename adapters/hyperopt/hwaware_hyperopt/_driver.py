"""The parallel fmin loop of ``HardwareAwareTrials``: propose, submit, wait, write back.

Single-threaded: the calling thread proposes trials (running ``algo``),
submits them, and waits on the executor's futures; executor threads only
resolve futures. Trial documents are therefore only written by the caller.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from hyperopt import base

from hwaware_hyperopt._branches import Branching, branching
from hwaware_hyperopt._docs import MISC_KEY
from hwaware_hyperopt._evaluate import fail, start, trial_point, write_outcome
from hwaware_hyperopt._resume import fail_stale_trials, rerun_doc, retries_used, save_trials
from hwaware_plugins.errors import HwawareError
from hwaware_plugins.executors._retry import RetryGate, submit_with_retries
from hwaware_plugins.executors._timeouts import timeout_for
from hwaware_plugins.scheduling import DeviceClassInfo

_log = logging.getLogger("hwaware_hyperopt")

WAIT_S = 0.05
"""Longest wait for a result before the loop re-checks ``timeout`` (results wake it at once)."""


class TrialFailedError(HwawareError, RuntimeError):
    """An objective raised in its worker, or returned an invalid result, while
    ``catch_eval_exceptions`` was false.

    The message names the trial and the exception; ``traceback`` holds the
    worker's traceback text. The trial stays in the ``Trials`` object as an
    ERROR trial.
    """

    def __init__(self, message: str, traceback: str | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback


class _ClassFilter:
    """A picklable ``device_filter`` keeping the devices of one class."""

    def __init__(self, device_class: str) -> None:
        self.device_class = device_class

    def __call__(self, device: Any) -> bool:
        return bool(device.device_class == self.device_class)


class _AnyAccelerator:
    """A picklable ``oom_device_filter``: an OOM trial may move to any GPU or MIG instance."""

    def __call__(self, device: Any) -> bool:
        return bool(device.is_accelerator)


def pick_class(classes: Sequence[DeviceClassInfo], running: Counter[str]) -> str:
    """The class the next trial goes to: the fastest with a free slot, else the least loaded.

    ``classes`` are fastest first. Pure; O(classes).
    """
    for info in classes:
        if running[info.name] < max(1, info.slots):
            return info.name
    return min(classes, key=lambda c: running[c.name] / max(1, c.slots)).name


@dataclass
class _Loop:
    trials: Any
    executor: Any
    domain: base.Domain
    fn: Any
    algo: Any
    rstate: Any
    classes: list[DeviceClassInfo]
    catch: bool
    in_flight: dict[Future[Any], tuple[dict[str, Any], str]] = field(default_factory=dict)
    running: Counter[str] = field(default_factory=Counter)
    error: TrialFailedError | None = None
    reruns: list[dict[str, Any]] = field(default_factory=list)
    gate: RetryGate = field(default_factory=RetryGate)
    branches: Branching | None = None

    def propose(self) -> list[dict[str, Any]]:
        device_class = pick_class(self.classes, self.running)
        if self.reruns:  # trials of a dead coordinator first, at their own point
            docs = [rerun_doc(self.trials, self.reruns.pop(0))]
        else:
            self.trials.hwaware_next_device_class = device_class
            ids = self.trials.new_trial_ids(1)
            self.trials.refresh()
            docs = self.algo(ids, self.domain, self.trials, int(self.rstate.integers(2**31 - 1)))
        if docs:
            self.trials.insert_trial_docs(docs)
            # The stored documents (insert_trial_docs copies them when bson is installed).
            docs = self.trials._dynamic_trials[-len(docs):]
            self.trials.refresh()
            for doc in docs:
                self.submit(doc, device_class)
        return docs

    def submit(self, doc: dict[str, Any], device_class: str) -> None:
        start(doc)
        doc["misc"].setdefault(MISC_KEY, {})["device_class"] = device_class
        options: dict[str, Any] = {
            "device_filter": _ClassFilter(device_class),
            "label": f"hyperopt-trial-{doc['tid']}",
            "timeout": timeout_for(self.trials.timeout_per_trial, self._subspace(doc)),
        }
        if self.trials.hwaware_is_accelerator_class(device_class):
            options["oom_device_filter"] = _AnyAccelerator()
        try:
            point = trial_point(self.domain, doc)
            # The objective itself is sent (no wrapper of ours), so a worker
            # imports neither hyperopt nor this adapter unless the objective does.
            future = submit_with_retries(
                self.executor, self.fn, (point,), options, gate=self.gate,
                max_retries=max(0, self.trials.max_retries - retries_used(doc)),
            )
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            fail(doc, type(exc).__name__, message)
            self._failed(doc, message, None)
            return
        self.in_flight[future] = (doc, device_class)
        self.running[device_class] += 1

    def _subspace(self, doc: dict[str, Any]) -> str | None:
        """The trial's subspace key, read only when timeouts differ per subspace.

        ``suggest`` records it in ``misc["hwaware"]``; for any other algo it is
        found from the branch choices (the space is read once per run).
        """
        if not isinstance(self.trials.timeout_per_trial, Mapping):
            return None
        known = doc["misc"].get(MISC_KEY, {}).get("subspace")
        if isinstance(known, str):
            return known
        if self.branches is None:
            self.branches = branching(self.domain.expr)
        return self.branches.subspace_of(doc["misc"].get("vals") or {})

    def _failed(self, doc: dict[str, Any], message: str, traceback: str | None) -> None:
        _log.error("trial %s failed: %s", doc["tid"], message)
        if not self.catch and self.error is None:
            self.error = TrialFailedError(
                f"trial {doc['tid']} failed: {message} (pass catch_eval_exceptions=True "
                "to record failures and go on)", traceback,
            )

    def collect(self, futures: Any, reason: str | None = None) -> int:
        for future in futures:
            doc, device_class = self.in_flight.pop(future)
            self.running[device_class] -= 1
            outcome = future.result()
            if reason is not None and outcome.state == "cancelled":
                outcome = dataclasses.replace(outcome, error=f"{reason} ({outcome.error})")
            error = write_outcome(self.trials, doc, outcome)
            # The objective's own failures stop fmin without catch: it raised
            # ("fail") or returned an invalid result ("complete" with an error).
            if error is not None and outcome.state in ("fail", "complete"):
                self._failed(doc, error, outcome.traceback)
        self.trials.refresh()
        return len(futures)

    def cancel_all(self, reason: str) -> None:
        """Interrupt the executor and write every in-flight trial back (cancelled or done)."""
        if not self.in_flight:
            return
        self.gate.close()  # no retry starts from here on, so the interrupt reaches them all
        self.executor.interrupt()
        done, pending = wait(list(self.in_flight), timeout=30.0)
        self.collect(done, reason)
        for future in pending:
            doc, device_class = self.in_flight.pop(future)
            self.running[device_class] -= 1
            fail(doc, "cancelled", reason, state=base.JOB_STATE_CANCEL)
        self.trials.refresh()


def _best_loss(trials: Any) -> float | None:
    losses = [
        float(r["loss"]) for r in trials.results
        if r.get("status") == base.STATUS_OK and r.get("loss") is not None
        and float(r["loss"]) == float(r["loss"])
    ]
    return min(losses) if losses else None


def run_fmin(
    trials: Any, fn: Any, space: Any, algo: Any, *, max_evals: int, timeout: float | None,
    loss_threshold: float | None, rstate: Any, catch_eval_exceptions: bool,
    early_stop_fn: Callable[..., Any] | None, trials_save_file: str,
) -> None:
    """Run the search until ``max_evals`` trials exist or a stop condition holds.

    See :class:`~hwaware_hyperopt.HardwareAwareTrials` for the semantics of
    each option. Trials a previous run left running are failed first (and
    queued for a re-run within ``max_retries``). Raises
    :class:`TrialFailedError` after writing everything back.
    """
    started = time.monotonic()
    trials._check()
    domain = base.Domain(fn, space)
    loop = _Loop(trials, trials.executor_object(), domain, fn, algo, rstate,
                 list(trials.hwaware_device_classes), catch_eval_exceptions)
    limit = trials.slots()
    stale = fail_stale_trials(trials)
    loop.reruns = [doc for doc in stale if retries_used(doc) < trials.max_retries]
    if stale:
        save_trials(trials, trials_save_file)
    trials.refresh()
    budget = max(0, max_evals - len(trials.trials))
    queued, stop = 0, ""
    early_args: list[Any] = []
    try:
        while True:
            if timeout is not None and time.monotonic() - started >= timeout:
                stop = f"fmin timeout of {timeout} s reached"
                break
            while not stop and len(loop.in_flight) < limit and queued < budget:
                proposed = loop.propose()
                if not proposed:
                    stop = "the algorithm proposed no more trials"
                queued += len(proposed)
                if loop.error is not None:
                    break
            if loop.error is not None or not loop.in_flight:
                break
            left = None if timeout is None else timeout - (time.monotonic() - started)
            done, _ = wait(list(loop.in_flight), timeout=max(0.0, min(WAIT_S, left or WAIT_S)),
                           return_when=FIRST_COMPLETED)
            if not done:
                continue
            loop.collect(done)
            save_trials(trials, trials_save_file)
            if loop.error is not None:
                break
            best = _best_loss(trials)
            if loss_threshold is not None and best is not None and best < loss_threshold:
                stop = f"loss {best} is below loss_threshold {loss_threshold}"
                break
            if early_stop_fn is not None:
                halt, early_args = early_stop_fn(trials, *early_args)
                if halt:
                    stop = "early_stop_fn asked to stop"
                    break
    except BaseException as exc:
        loop.cancel_all(f"interrupted by {type(exc).__name__}")
        save_trials(trials, trials_save_file)
        raise
    finally:
        trials.hwaware_next_device_class = None
    if loop.in_flight:
        loop.cancel_all((loop.error and "another trial failed") or stop)
    if stop:
        _log.info("hyperopt search stopped: %s", stop)
    save_trials(trials, trials_save_file)
    if loop.error is not None:
        raise loop.error
