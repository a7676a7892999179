"""The parallel fmin loop of ``HardwareAwareTrials``: propose, submit, wait, write back.

Single-threaded: the calling thread proposes trials (running ``algo``),
submits them, and waits on the executor's futures; executor threads only
resolve futures (and queue them in the order they finish). Trial documents
are therefore only written by the caller.

What hyperopt's algorithms and helpers see is what fmin's serial loop shows
them: running trials are not in ``trials.trials`` (see
``HardwareAwareTrials.refresh``), results are listed in the order they
arrived, and ``loss_threshold`` and ``early_stop_fn`` are checked after every
single result.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any

from hyperopt import base, progress

from hwaware_hyperopt._branches import Branching, branching
from hwaware_hyperopt._docs import MISC_KEY
from hwaware_hyperopt._evaluate import fail, start, trial_point, write_outcome
from hwaware_hyperopt._remote import CatchingObjective, RaisedInWorker, as_failure, rebuild
from hwaware_hyperopt._resume import fail_stale_trials, rerun_doc, retries_used, save_trials
from hwaware_plugins.errors import ConfigError, HwawareError
from hwaware_plugins.executors import TaskSerializationError
from hwaware_plugins.executors._retry import RetryGate, submit_with_retries
from hwaware_plugins.executors._timeouts import OTHER_SUBSPACES, timeout_for
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


def check_subspace_keys(setting: Mapping[str, Any], keys: Sequence[str]) -> None:
    """Refuse a per-subspace ``timeout_per_trial`` key that names no subspace of the space
    (it would silently mean "no limit" for the subspace the user meant).

    :raises ConfigError: naming the unknown keys and the space's own.
    """
    unknown = [key for key in setting if key != OTHER_SUBSPACES and key not in keys]
    if unknown:
        shown = ", ".join(repr(key) for key in keys[:8]) + (", ..." if len(keys) > 8 else "")
        raise ConfigError(
            f"timeout_per_trial names {', '.join(repr(key) for key in unknown)}, not a "
            f"subspace of this space; its subspaces are {shown} ({OTHER_SUBSPACES!r} covers "
            "the rest)"
        )


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
    finished: queue.SimpleQueue[Future[Any]] = field(default_factory=queue.SimpleQueue)
    running: Counter[str] = field(default_factory=Counter)
    error: BaseException | None = None
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

    def submit_waiting(self, doc: dict[str, Any]) -> None:
        """Submit a trial that was queued (``JOB_STATE_NEW``) before ``fmin`` started."""
        self.submit(doc, pick_class(self.classes, self.running))

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
        # With catch_eval_exceptions=True the objective itself is sent (no wrapper of
        # ours, so a worker imports neither hyperopt nor this adapter unless the
        # objective does); without it, a wrapper brings the exception object back.
        objective = self.fn if self.catch else CatchingObjective(self.fn)
        try:
            point = trial_point(self.domain, doc)
        except Exception as exc:  # the space's own code (a scope function) raised
            message = f"{type(exc).__name__}: {exc}"
            fail(doc, type(exc).__name__, message)
            if not self.catch and self.error is None:
                self.error = exc  # as plain hyperopt raises it, the same type
            self._failed(doc, message, None)
            return
        try:
            future = submit_with_retries(
                self.executor, objective, (point,), options, gate=self.gate,
                max_retries=max(0, self.trials.max_retries - retries_used(doc)),
            )
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            fail(doc, type(exc).__name__, message)
            # The executor's set-up is wrong (not this trial's point, which a
            # TaskSerializationError may be about): stop with the executor's own message.
            setup = isinstance(exc, ConfigError) and not isinstance(exc, TaskSerializationError)
            if setup and self.error is None:
                self.error = exc
            self._failed(doc, message, None)
            return
        self.in_flight[future] = (doc, device_class)
        self.running[device_class] += 1
        future.add_done_callback(self.finished.put)

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

    def _failed(self, doc: dict[str, Any], message: str, traceback: str | None,
                raised: RaisedInWorker | None = None) -> None:
        _log.error("trial %s failed: %s", doc["tid"], message)
        if not self.catch and self.error is None:
            own = rebuild(raised) if raised is not None else None
            # catch_eval_exceptions=True would only record the same failure for every trial
            # when the objective itself cannot reach a worker.
            hint = "" if message.startswith(TaskSerializationError.__name__) else (
                " (pass catch_eval_exceptions=True to record failures and go on)")
            self.error = own if own is not None else TrialFailedError(
                f"trial {doc['tid']} failed: {message}{hint}", traceback,
            )

    def next_finished(self, wait_s: float) -> Future[Any] | None:
        """The next evaluation to finish, in the order they finished; ``None`` after ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                future = self.finished.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if future in self.in_flight:  # not one cancel_all already wrote back
                return future

    def collect(self, future: Future[Any], reason: str | None = None, *,
                unseen: bool = False) -> dict[str, Any]:
        """Write one finished evaluation into its trial document; return the document.

        The document moves to the end of the trial list, so ``trials.trials``
        lists results in the order they arrived (as fmin's serial loop does).
        ``unseen``: the search stopped before this result came; a completed
        evaluation is recorded as cancelled (its result kept in
        ``misc["hwaware"]["unseen_result"]``) and a failure does not stop fmin.
        """
        doc, device_class = self.in_flight.pop(future)
        self.running[device_class] -= 1
        outcome = future.result()
        raised = outcome.value if isinstance(outcome.value, RaisedInWorker) else None
        outcome = as_failure(outcome)
        if reason is not None and outcome.state == "cancelled":
            outcome = dataclasses.replace(outcome, error=f"{reason} ({outcome.error})")
        error = write_outcome(self.trials, doc, outcome)
        if unseen and doc["state"] == base.JOB_STATE_DONE:
            result = doc["result"]
            fail(doc, "cancelled", f"{reason}; this trial finished after the search stopped",
                 state=base.JOB_STATE_CANCEL)
            doc["misc"][MISC_KEY]["unseen_result"] = result
        # The objective's own failures stop fmin without catch: it raised
        # ("fail") or returned an invalid result ("complete" with an error).
        elif error is not None and outcome.state in ("fail", "complete"):
            if unseen:
                _log.error("trial %s failed: %s", doc["tid"], error)
            else:
                self._failed(doc, error, outcome.traceback, raised)
        _move_to_end(self.trials._dynamic_trials, doc)
        self.trials.refresh()
        return doc

    def cancel_all(self, reason: str, *, unseen: bool = False) -> None:
        """Interrupt the executor and write every in-flight trial back (cancelled or done).

        ``unseen``: the search itself decided to stop (early stop, loss
        threshold, a failure); what still finishes is not a result of it (see
        :meth:`collect`).
        """
        if not self.in_flight:
            return
        self.gate.close()  # no retry starts from here on, so the interrupt reaches them all
        self.executor.interrupt()
        done, pending = wait(list(self.in_flight), timeout=30.0)
        for future in done:
            self.collect(future, reason, unseen=unseen)
        for future in pending:
            doc, device_class = self.in_flight.pop(future)
            self.running[device_class] -= 1
            fail(doc, "cancelled", reason, state=base.JOB_STATE_CANCEL)
        self.trials.refresh()


def _move_to_end(docs: list[dict[str, Any]], doc: dict[str, Any]) -> None:
    for index in range(len(docs) - 1, -1, -1):
        if docs[index] is doc:
            del docs[index]
            break
    docs.append(doc)


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
    progress_callback: Callable[..., Any] = progress.no_progress_callback,
) -> None:
    """Run the search until ``max_evals`` trials exist or a stop condition holds.

    See :class:`~hwaware_hyperopt.HardwareAwareTrials` for the semantics of
    each option. Trials a previous run left running are failed first (and
    queued for a re-run within ``max_retries``); trials queued before ``fmin``
    (``JOB_STATE_NEW``, e.g. from ``generate_trials_to_calculate``) are
    evaluated first, and ``algo`` proposes only once their results are in.
    ``loss_threshold`` and ``early_stop_fn`` are checked after every single
    result, as in fmin's serial loop.
    ``progress_callback`` is a hyperopt progress context manager factory
    (``initial``, ``total``), updated per done trial.
    Raises the objective's own exception (or :class:`TrialFailedError`) after
    writing everything back.
    """
    started = time.monotonic()
    trials._check()
    domain = base.Domain(fn, space)
    loop = _Loop(trials, trials.executor_object(), domain, fn, algo, rstate,
                 list(trials.hwaware_device_classes), catch_eval_exceptions)
    if isinstance(trials.timeout_per_trial, Mapping):
        loop.branches = branching(domain.expr)
        check_subspace_keys(trials.timeout_per_trial, loop.branches.keys)
    limit = trials.slots()
    stale = fail_stale_trials(trials)
    loop.reruns = [doc for doc in stale if retries_used(doc) < trials.max_retries]
    if stale:
        save_trials(trials, trials_save_file)
    trials.refresh()
    waiting = [doc for doc in trials.trials if doc["state"] == base.JOB_STATE_NEW]
    first = {doc["tid"] for doc in waiting}
    budget = max(0, max_evals - len(trials.trials))
    n_done = trials.count_by_state_unsynced(base.JOB_STATE_DONE)

    def search(bar: Any) -> tuple[str, bool]:
        """Propose, submit and collect until a stop; return why, and whether results said so.

        Its own frame, not a loop inside run_fmin's ``try``: CPython 3.11 can
        raise a Ctrl-C at the jump back to a loop's first line, outside the
        ``try`` that starts there.
        """
        queued, exhausted = 0, False
        early_args: list[Any] = []
        while True:
            if timeout is not None and time.monotonic() - started >= timeout:
                return f"fmin timeout of {timeout} s reached", False
            while (not exhausted and len(loop.in_flight) < limit
                   and (waiting or queued < budget)):
                if waiting:
                    loop.submit_waiting(waiting.pop(0))
                elif any(doc["tid"] in first for doc, _ in loop.in_flight.values()):
                    break  # as in the serial loop, the algorithm sees queued points' results
                else:
                    proposed = loop.propose()
                    queued += len(proposed)
                    exhausted = not proposed
                if loop.error is not None:
                    return "", True
            if not loop.in_flight:
                return ("the algorithm proposed no more trials" if exhausted else ""), False
            left = None if timeout is None else timeout - (time.monotonic() - started)
            future = loop.next_finished(WAIT_S if left is None else min(WAIT_S, left))
            if future is None:
                continue
            doc = loop.collect(future)
            save_trials(trials, trials_save_file)
            best = _best_loss(trials)
            if doc["state"] == base.JOB_STATE_DONE:
                if best is not None:
                    bar.postfix = f"best loss: {best}"
                bar.update(1)
            if loop.error is not None:
                return "", True
            if loss_threshold is not None and best is not None and best < loss_threshold:
                return f"loss {best} is below loss_threshold {loss_threshold}", True
            if early_stop_fn is not None:
                halt, early_args = early_stop_fn(trials, *early_args)
                if halt:
                    return "early_stop_fn asked to stop", True

    with progress_callback(initial=n_done, total=max_evals) as bar:
        try:
            stop, stopped_by_search = search(bar)
        except BaseException as exc:
            loop.cancel_all(f"interrupted by {type(exc).__name__}")
            save_trials(trials, trials_save_file)
            raise
        finally:
            trials.hwaware_next_device_class = None
        if loop.in_flight:
            if loop.error is not None:
                loop.cancel_all("another trial failed", unseen=True)
            else:
                loop.cancel_all(stop, unseen=stopped_by_search)
    if stop:
        _log.info("hyperopt search stopped: %s", stop)
    save_trials(trials, trials_save_file)
    if loop.error is not None:
        raise loop.error
