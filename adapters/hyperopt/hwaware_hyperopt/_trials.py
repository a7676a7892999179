"""``HardwareAwareTrials``: a hyperopt ``Trials`` that runs evaluations in parallel, pinned."""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Sequence
from typing import Any

from hyperopt import base
from hyperopt.exceptions import AllTrialsFailed

from hwaware_hyperopt._docs import MISC_KEY
from hwaware_hyperopt._driver import run_fmin
from hwaware_hyperopt._evaluate import CANCELLED
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.executors._retry import check_retries
from hwaware_plugins.executors._timeouts import TrialTimeout, check_trial_timeout
from hwaware_plugins.hardware import Device, device_classes, resolve_devices
from hwaware_plugins.scheduling import DeviceClassInfo

_log = logging.getLogger(__name__)


class HardwareAwareTrials(base.Trials):  # type: ignore[misc]
    """A ``hyperopt.Trials`` whose ``fmin`` runs evaluations in parallel on leased device slots.

    Pass it to ``hyperopt.fmin(..., trials=HardwareAwareTrials())``. Each
    evaluation runs in its own worker process pinned to one device slot
    (``CUDA_VISIBLE_DEVICES`` by UUID, CPU affinity, thread counts) through an
    executor; up to ``parallelism`` run at once. The search space is evaluated
    in this process; only the objective and its point travel to the worker.

    What each trial document records (see :mod:`hwaware_hyperopt._docs`):
    ``misc["hwaware"]`` holds the device, its class, the slot, the executor's
    state, the runtime, the peak memory and every placement attempt; a failed
    trial is ``JOB_STATE_ERROR`` with ``misc["error"] = (kind, message)`` and
    the worker's traceback in ``result["traceback"]``; a cancelled one is
    ``JOB_STATE_CANCEL``. Only new and done trials appear in ``trials.trials``
    (see below); all are in ``trials._dynamic_trials``.

    ``fmin`` options behave as with ``Trials``: ``max_evals`` counts the trials
    already held (so a second ``fmin`` continues), and trials queued before
    ``fmin`` (``generate_trials_to_calculate``) are evaluated first, the
    algorithm proposing only once their results are in (as in the serial
    loop; slots they leave free wait);
    ``timeout`` cancels the running trials when it expires; ``loss_threshold``
    and ``early_stop_fn`` are checked after every result, as in hyperopt's
    serial loop, and a stop cancels what still runs (an evaluation that
    finishes after the stop is recorded as cancelled, its result kept in
    ``misc["hwaware"]["unseen_result"]``, so a stop after 5 results keeps 5).
    With ``catch_eval_exceptions=False`` an objective that raises stops the
    search and ``fmin`` raises that exception itself (type and message, the
    worker's traceback as its ``__cause__``, a
    :class:`~hwaware_hyperopt.RemoteTraceback`; for this the objective runs
    wrapped, so the worker imports ``hwaware_hyperopt``, not hyperopt: on
    Dask, install the adapter on the workers); one that returns an
    invalid result (not a number or a result dict, or a NaN or infinite loss),
    or whose exception cannot be pickled, stops it with
    :class:`TrialFailedError` (a crash, an out-of-memory failure or a
    per-trial timeout is recorded and the search goes on); with
    ``catch_eval_exceptions=True`` an invalid result is an ERROR trial with
    ``misc["error"] = ("InvalidResult", reason)``. When every evaluated trial
    failed, ``fmin`` raises hyperopt's ``AllTrialsFailed`` naming the first
    failure. Ctrl-C kills every worker's process group, marks the running
    trials cancelled and re-raises. ``show_progressbar`` draws hyperopt's own
    progress bar (with ``verbose``, as ``fmin`` does). ``pass_expr_memo_ctrl``
    is not supported; ``max_queue_len`` is ignored (``parallelism`` sets how
    many run).

    While ``fmin`` runs, what hyperopt's algorithms (``tpe``, ``atpe``,
    ``anneal``, ``rand``), ``early_stop_fn`` (e.g. ``no_progress_loss``) and
    ``losses()``, ``results``, ``statuses()``, ``best_trial`` and ``argmin``
    read is what they read in hyperopt's serial loop: running trials are left
    out of ``trials.trials`` (they are in ``trials._dynamic_trials``), and
    finished trials are listed in the order their results arrived (not
    necessarily by trial id).

    Failures of the worker rather than the objective: a trial that ran out of
    accelerator memory is re-placed by the executor with a larger memory need
    (``max_oom_retries`` of ``LocalExecutor``), on any GPU or MIG instance with
    room for it, not only its own device class; each decision is logged at
    warning level and listed in ``misc["hwaware"]["attempts"]``. With
    ``max_retries``, a trial whose last attempt crashed, ran out of memory or
    timed out runs again on a fresh placement (same trial id, every attempt
    kept, ``misc["hwaware"]["retries"]`` counts them).

    Resuming: ``fmin`` with the ``trials`` of a run whose coordinator died
    (``trials_save_file``, written atomically after every result) keeps every
    finished trial; the trials that were still running become ERROR trials
    with ``misc["error"] = ("CoordinatorDied", reason)`` and, with
    ``max_retries``, are run again at the same point as new trials
    (``misc["hwaware"]["retry_of"]`` names the old one).

    Arguments are stored as given and validated when ``fmin`` starts.

    :param devices: ``None`` (the executor's devices, else ``HWAWARE_DEVICES``
        or a probe of this host), a declared-device file path, or a list of
        :class:`~hwaware_plugins.hardware.Device`.
    :param scheduler: the scheduler :func:`~hwaware_hyperopt.suggest` uses when
        it is the ``algo`` (a registered name or a scheduler object).
    :param executor: ``"local"`` (:class:`~hwaware_plugins.executors.LocalExecutor`
        over ``devices``: persistent pinned worker processes), ``"thread"``
        (:class:`~hwaware_plugins.executors.ThreadExecutor` over ``devices``:
        coordinator threads, for objectives that keep state in the coordinator,
        e.g. hyperopt-sklearn's ``HyperoptEstimator``; the objective reads its
        device from :func:`~hwaware_plugins.executors.current_device`), another
        registered executor name, or an executor object such as ``DaskExecutor(client)``.
    :param parallelism: evaluations at once (default: the devices' slot count).
    :param timeout_per_trial: seconds after which one evaluation is killed and
        recorded as an ERROR trial with state ``timeout``; or a mapping from
        subspace key (``misc["hwaware"]["subspace"]``) to seconds, ``"*"``
        standing for the subspaces it does not name (e.g. ``{"model=mlp": 600,
        "*": 60}``; see :func:`hwaware_plugins.executors.timeout_for`).
    :param max_retries: how often a trial whose worker crashed, ran out of
        memory or timed out is run again on a fresh placement (default 0).
        The executor must accept ``LocalExecutor.submit``'s options
        (``device_filter``, ``oom_device_filter``, ``label``, ``timeout``).

    Cost: one persistent worker process per slot, started at the first
    evaluation and reused (replaced after a crash, an out-of-memory failure or
    a timeout), and per evaluation the pickling of the objective and its
    point; :meth:`close`, or dropping the object, ends the workers; the driver
    waits on results, it never sleeps a fixed poll interval. Thread-safety: run
    one ``fmin`` at a time per object. After a run the object pickles (the
    executor is dropped and rebuilt on the next ``fmin``; an executor given as
    an object is replaced by ``"local"``).
    """

    hwaware_next_device_class: str | None = None

    @property
    def asynchronous(self) -> bool:
        """Read only by hyperopt's own serial loop, which must not run these trials.

        ``fmin`` calls :meth:`fmin` on a trials object it is given; it runs its own
        loop (in this process, no device, no resume of a dead run's trials) only
        when it loaded the trials from ``trials_save_file`` itself or was told
        ``allow_trials_fmin=False``.

        :raises ConfigError: always, saying how to pass the trials instead.
        """
        raise ConfigError(
            "hyperopt is about to evaluate a HardwareAwareTrials in its own serial loop, "
            "on no device (fmin loaded it from trials_save_file because trials= was not "
            "given, or allow_trials_fmin=False): pass it yourself, e.g. "
            "fmin(..., trials=pickle.load(open(path, 'rb')), trials_save_file=path)"
        )

    def __init__(
        self,
        *,
        devices: str | Sequence[Device] | None = None,
        scheduler: Any = "hwaware",
        executor: Any = "local",
        parallelism: int | None = None,
        timeout_per_trial: TrialTimeout = None,
        max_retries: int = 0,
        exp_key: str | None = None,
    ) -> None:
        self.devices = devices
        self.scheduler = scheduler
        self.executor = executor
        self.parallelism = parallelism
        self.timeout_per_trial = timeout_per_trial
        self.max_retries = max_retries
        self._executor: Any = None
        self._classes: list[DeviceClassInfo] | None = None
        self._accelerators: frozenset[str] | None = None
        super().__init__(exp_key=exp_key, refresh=True)

    # -- configuration ---------------------------------------------------------------------

    def _check(self) -> None:
        p = self.parallelism
        if p is not None and (isinstance(p, bool) or not isinstance(p, int) or p < 1):
            raise ConfigError(f"parallelism must be an int >= 1 or None, got {p!r}")
        check_trial_timeout(self.timeout_per_trial, "timeout_per_trial")
        check_retries(self.max_retries)

    def resolved_devices(self) -> list[Device]:
        """The devices trials are placed on (see ``devices``); cost: a probe or a file read."""
        if self.devices is not None:
            return resolve_devices(self.devices)
        executor = self._executor if self._executor is not None else self.executor
        if not isinstance(executor, str):
            listed = getattr(executor, "devices", None)
            if callable(listed):
                return list(listed())
            pool = getattr(executor, "pool", None)
            if pool is not None and getattr(pool, "devices", None):
                return list(pool.devices)
        return resolve_devices(None)

    @property
    def hwaware_device_classes(self) -> list[DeviceClassInfo]:
        """The device classes of :meth:`resolved_devices`, fastest first (cached)."""
        if self._classes is None:
            devices = self.resolved_devices()
            # The pool skips GPUs other users' processes hold: a class made only of those
            # could never take the trial sent to it.
            pool = None if isinstance(self.executor, str) else getattr(self.executor, "pool", None)
            skips = bool(getattr(pool, "skip_foreign_processes", True))
            usable = [d for d in devices
                      if not (skips and d.is_accelerator and d.busy_with_foreign_processes)]
            self._classes = device_classes(usable or devices)
            self._accelerators = frozenset(d.device_class for d in devices if d.is_accelerator)
        return self._classes

    def hwaware_is_accelerator_class(self, device_class: str) -> bool:
        """True when ``device_class`` is made of GPUs or MIG instances (cached with the classes)."""
        if self._accelerators is None:
            self._classes = None
            _ = self.hwaware_device_classes
        return device_class in (self._accelerators or frozenset())

    def executor_object(self) -> Any:
        """The executor evaluations run on, built on first use from ``executor``."""
        if self._executor is not None:
            return self._executor
        self._check()
        if isinstance(self.executor, str):
            from hwaware_plugins import load

            if self.executor in ("local", "thread"):
                self._executor = _local(self, threads=self.executor == "thread")
            else:
                try:
                    self._executor = load("executor", self.executor, framework="hyperopt")
                except TypeError as exc:  # a registered executor that needs arguments
                    raise ConfigError(
                        f"executor {self.executor!r} cannot be built from its name alone "
                        f"({exc}); pass the executor object instead, e.g. "
                        "executor=DaskExecutor('tcp://scheduler:8786')"
                    ) from None
        elif callable(getattr(self.executor, "submit", None)):
            self._executor = self.executor
        else:
            raise ConfigError(
                f"executor must be an executor name or an object with submit(), got "
                f"{type(self.executor).__name__}; try executor='local'"
            )
        if self._executor is not self.executor:
            # Built here, so ours to end: when this object is collected, its workers leave.
            finalizer = weakref.finalize(self, _shut_down, self._executor)
            finalizer.atexit = False  # at exit the executor's own hooks end its workers
            self._finalizer = finalizer
        return self._executor

    def slots(self) -> int:
        """Evaluations run at once: ``parallelism``, else the devices' total slot count."""
        self._check()
        if self.parallelism is not None:
            return self.parallelism
        return max(1, sum(c.slots for c in self.hwaware_device_classes))

    def close(self) -> None:
        """Shut down an executor this object built (running evaluations are interrupted).

        Its worker processes leave now; dropping the last reference to this
        object does the same (without waiting for them), so one
        ``HardwareAwareTrials`` per ``fmin`` in a loop does not pile workers up.
        """
        finalizer = self.__dict__.pop("_finalizer", None)
        if finalizer is not None:
            finalizer.detach()
        if self._executor is not None and self._executor is not self.executor:
            self._executor.shutdown(wait=True, cancel_running=True)
        self._executor = None

    # -- hyperopt API ----------------------------------------------------------------------

    def refresh(self) -> None:
        """Rebuild ``trials.trials``: new and done trials, not running ones.

        In hyperopt's serial loop an algorithm or ``early_stop_fn`` never sees
        a running trial (one without a ``loss``); neither do they here, so
        ``no_progress_loss`` and ``atpe`` read only finished results. Cost: one
        pass over the trial documents.
        """
        super().refresh()
        listed: list[dict[str, Any]] = self.trials
        self._trials = [t for t in listed if t["state"] != base.JOB_STATE_RUNNING]

    def fmin(
        self,
        fn: Any,
        space: Any,
        algo: Any = None,
        max_evals: int | None = None,
        timeout: float | None = None,
        loss_threshold: float | None = None,
        max_queue_len: int = 1,
        rstate: Any = None,
        verbose: bool = False,
        pass_expr_memo_ctrl: bool | None = None,
        catch_eval_exceptions: bool = False,
        return_argmin: bool = True,
        show_progressbar: Any = True,
        early_stop_fn: Any = None,
        trials_save_file: str = "",
    ) -> Any:
        """Minimise ``fn`` over ``space``, evaluating in parallel (called by ``hyperopt.fmin``).

        The arguments are ``hyperopt.fmin``'s; ``max_queue_len`` is accepted
        and ignored. ``show_progressbar`` (``True`` or a hyperopt progress
        callback) draws a bar when ``verbose`` is true, as ``fmin`` does.
        :raises ConfigError: ``pass_expr_memo_ctrl``, an invalid argument, or
            no trial was evaluated (e.g. ``timeout`` cancelled them all).
        :raises Exception: the objective's own exception, when it raised and
            ``catch_eval_exceptions`` is false (:class:`TrialFailedError` when
            it returned an invalid result or its exception cannot be pickled).
        :raises hyperopt.exceptions.AllTrialsFailed: every evaluated trial failed.
        """
        if pass_expr_memo_ctrl:
            raise ConfigError(
                "HardwareAwareTrials does not support pass_expr_memo_ctrl (the objective runs "
                "in another process); take the point as the objective's argument"
            )
        if isinstance(space, str) and space == "annotated":
            # Called directly: hyperopt.fmin builds the space from fn's annotations and
            # calls this method again with it.
            import hyperopt

            return hyperopt.fmin(
                fn, space, algo=algo, max_evals=max_evals, timeout=timeout,
                loss_threshold=loss_threshold, trials=self, rstate=rstate, verbose=verbose,
                catch_eval_exceptions=catch_eval_exceptions, return_argmin=return_argmin,
                show_progressbar=show_progressbar, early_stop_fn=early_stop_fn,
                trials_save_file=trials_save_file,
            )
        base.validate_timeout(timeout)
        base.validate_loss_threshold(loss_threshold)
        if algo is None:
            from hyperopt import tpe

            algo = tpe.suggest
        if rstate is None:
            import numpy as np

            rstate = np.random.default_rng()
        run_fmin(
            self, fn, space, algo,
            max_evals=sys.maxsize if max_evals is None else int(max_evals),
            timeout=timeout, loss_threshold=loss_threshold, rstate=rstate,
            catch_eval_exceptions=catch_eval_exceptions, early_stop_fn=early_stop_fn,
            trials_save_file=trials_save_file,
            progress_callback=_progress_callback(show_progressbar, verbose),
        )
        if return_argmin:
            return best_point(self)
        if len(self.trials) > 0:
            from hyperopt.fmin import space_eval

            return space_eval(space, best_point(self))
        return None

    # -- pickling --------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """The trial documents and settings, without the executor (rebuilt lazily)."""
        state = dict(self.__dict__)
        state["_executor"] = None
        state.pop("_finalizer", None)
        state["_classes"] = None
        state["_accelerators"] = None
        if not isinstance(state.get("executor"), str):
            state["executor"] = "local"
        if not isinstance(state.get("scheduler"), str):
            state["scheduler"] = "hwaware"
        state.pop("hwaware_next_device_class", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`__getstate__` (a pickle from an older version gets the defaults)."""
        state.setdefault("max_retries", 0)
        state.setdefault("_accelerators", None)
        self.__dict__.update(state)


def _shut_down(executor: Any) -> None:
    """End an executor whose ``HardwareAwareTrials`` was collected, without waiting for
    its idle workers to leave (they are gone by interpreter exit at the latest)."""
    from hwaware_plugins.executors import LocalExecutor

    if isinstance(executor, LocalExecutor):
        executor.shutdown(wait=True, cancel_running=True, workers_leave="background")
    else:
        executor.shutdown(wait=True, cancel_running=True)


def _progress_callback(show_progressbar: Any, verbose: bool) -> Any:
    """The progress context manager factory ``FMinIter`` would use for these arguments."""
    from hyperopt import progress

    if not show_progressbar or not verbose:
        return progress.no_progress_callback
    if show_progressbar is True:
        return progress.default_callback
    return show_progressbar


def _failure(doc: dict[str, Any]) -> str | None:
    """Why an evaluated trial failed, or ``None`` when it did not fail (or was cancelled)."""
    if doc["state"] == base.JOB_STATE_DONE:
        result = doc.get("result") or {}
        if result.get("status") == base.STATUS_OK:
            return None
        status = result.get("status")
        return str(result.get("failure") or f"the objective returned status {status!r}")
    if doc["state"] != base.JOB_STATE_ERROR:
        return None
    if (doc["misc"].get(MISC_KEY) or {}).get("state") == CANCELLED:
        return None  # its coordinator died: it was never evaluated to the end
    error = doc["misc"].get("error") or ("error", "unknown")
    return str(error[1])


def best_point(trials: base.Trials) -> dict[str, Any]:
    """``trials.argmin``, or one line saying why there is none.

    :raises hyperopt.exceptions.AllTrialsFailed: no trial succeeded and some
        failed; the message counts them and names the first failure.
    :raises ConfigError: no trial was evaluated at all.
    Cost: one pass over the trial documents.
    """
    if any(r.get("status") == base.STATUS_OK for r in trials.results):
        point: dict[str, Any] = trials.argmin
        return point
    failed = [(doc["tid"], why) for doc in trials._dynamic_trials
              if (why := _failure(doc)) is not None]
    if failed:
        tid, why = failed[0]
        raise AllTrialsFailed(
            f"all {len(failed)} evaluated trials failed; the first, trial {tid}: {why}"
        )
    raise ConfigError(
        "there are no evaluated trials, so there is no argmin; raise max_evals or timeout"
    )


def _local(trials: HardwareAwareTrials, *, threads: bool = False) -> Any:
    from hwaware_plugins.executors import LocalExecutor, ThreadExecutor

    # No default time limit: each submit passes its trial's own (timeout_per_trial).
    kind = ThreadExecutor if threads else LocalExecutor
    executor = kind(
        resolve_devices(trials.devices), max_workers=trials.parallelism, framework="hyperopt",
    )
    _ = executor.pool  # built now: a device workers cannot be pinned to is refused before fmin
    return executor
