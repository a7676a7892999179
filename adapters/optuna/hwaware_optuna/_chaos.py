"""The chaos benchmark's optuna drivers: ask, run pinned in a worker process, tell.

Registered as components of kind :data:`~hwaware_plugins.hookspecs.CHAOS_DRIVER_KIND`
(``optimize`` and ``executor``, framework ``optuna``) by this adapter's plugin,
so ``hwaware bench chaos --framework optuna`` finds them without the core
importing optuna. Imports optuna when called, never at import time.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from hwaware_plugins import attrs
from hwaware_plugins.chaos import KEY_ATTR, PARAM_NAMES, RunContext, TrialResult
from hwaware_plugins.executors import RETRY_STATES
from hwaware_plugins.executors._retry import retry_label

RETRY_ATTR = attrs.RETRY
"""User attribute: 0 for the first attempt, n for the n-th retry."""

RETRY_OF_ATTR = attrs.RETRY_OF
"""User attribute of a retry: the number of the failed trial it repeats."""

REASON_ATTR = attrs.FAIL_REASON
"""User attribute of a failed trial: ``"<state>: <what happened>"``."""

STATE_ATTR = attrs.STATE
"""User attribute: the executor's outcome state (``complete``, ``crash``, ``oom``, ...)."""

ATTEMPTS_ATTR = attrs.ATTEMPTS
"""User attribute: every placement as ``[device_id, state, reason]``."""


def _record(trial: Any, outcome: Any) -> None:
    trial.set_user_attr(STATE_ATTR, outcome.state)
    trial.set_user_attr(attrs.DEVICE_ID, outcome.device_id)
    trial.set_user_attr(attrs.DEVICE_CLASS, outcome.device_class)
    trial.set_user_attr(attrs.RUNTIME_S, float(outcome.runtime_s or 0.0))
    trial.set_user_attr(ATTEMPTS_ATTR, [list(a) for a in outcome.attempts])
    if outcome.state != "complete":
        trial.set_user_attr(REASON_ATTR, f"{outcome.state}: {outcome.error}")


Previous = tuple[int, dict[str, float]]


def _ask(
    study: Any, key: str, retry: int, previous: Previous | None
) -> tuple[Any, dict[str, float]]:
    if previous is not None:
        number, params = previous
        study.enqueue_trial(params, user_attrs={RETRY_OF_ATTR: number})
    trial = study.ask()
    params = {name: trial.suggest_float(name, -1.0, 1.0) for name in PARAM_NAMES}
    trial.set_user_attr(KEY_ATTR, key)
    trial.set_user_attr(RETRY_ATTR, retry)
    return trial, params


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs errors only (every injected failure would warn), then as before."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


_REASON_STATES = {"error": "fail", "interrupted": "cancelled"}


def _failed_state(trial: Any) -> str:
    if STATE_ATTR in trial.user_attrs:
        return str(trial.user_attrs[STATE_ATTR])
    kind = str(trial.user_attrs.get(REASON_ATTR, "fail")).split(":", 1)[0]
    return _REASON_STATES.get(kind, kind)


def _attempt_states(trial: Any) -> list[str]:
    from optuna.trial import TrialState

    if ATTEMPTS_ATTR in trial.user_attrs:
        return [str(a[1]) for a in trial.user_attrs[ATTEMPTS_ATTR] if a[0] is not None]
    if trial.state == TrialState.COMPLETE:
        return ["complete"]
    return [_failed_state(trial)] if trial.state == TrialState.FAIL else []


def results_of(study: Any) -> list[TrialResult]:
    """Group a study's trials by :data:`KEY_ATTR`; the last attempt of each gives its state.

    A failed trial's state is its ``hwaware:state``, else the kind its
    ``hwaware:fail_reason`` starts with (``crash``, ``oom``, ``timeout``; an
    objective error is ``fail``); it counts as recorded only with a reason.
    """
    from optuna.trial import TrialState

    groups: dict[str, list[Any]] = collections.defaultdict(list)
    for trial in study.get_trials(deepcopy=False):
        groups[str(trial.user_attrs.get(KEY_ATTR, f"trial-{trial.number}"))].append(trial)
    results = []
    for key, attempts in groups.items():
        attempts.sort(key=lambda t: t.number)
        states = tuple(s for t in attempts for s in _attempt_states(t))
        last = attempts[-1]
        if last.state == TrialState.COMPLETE:
            results.append(TrialResult(key, "complete", states))
        elif last.state == TrialState.FAIL:
            reason = last.user_attrs.get(REASON_ATTR)
            results.append(TrialResult(key, _failed_state(last), states, recorded=bool(reason)))
        else:
            results.append(TrialResult(key, last.state.name.lower(), states, recorded=False))
    return results


def run_optuna(context: RunContext) -> list[TrialResult]:
    """Run the requested trials through ``study.ask``/``tell`` on the executor; read them back.

    Each attempt is its own optuna trial: a failed one is told ``FAIL`` with
    its reason in ``hwaware:fail_reason``; a crash, OOM or timeout with
    retries left is enqueued again with the same parameters
    (``hwaware:retry_of``), as optuna's ``RetryFailedTrialCallback`` does, and
    placed afresh. Ctrl-C fails the running trials with reason
    ``"interrupted"`` after the executor killed their workers.
    """
    import optuna

    settings = context.settings
    with _quiet_optuna():
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=settings.seed))
        _ask_tell(study, context)
    return results_of(study)


def _ask_tell(study: Any, context: RunContext) -> None:
    """The ask/submit/tell loop of :func:`run_optuna`; retries go to the front of the queue."""
    from optuna.trial import TrialState

    settings = context.settings
    executor = context.executor
    todo: collections.deque[tuple[str, int, Previous | None]] = collections.deque(
        (f"optuna-trial-{n}", 0, None) for n in range(settings.trials)
    )
    running: dict[Future[Any], tuple[Any, str, int, dict[str, float]]] = {}
    try:
        while todo or running:
            while todo and len(running) < context.slots:
                key, retry, previous = todo.popleft()
                trial, params = _ask(study, key, retry, previous)
                future = executor.submit(context.objective, params, label=retry_label(key, retry),
                                         timeout=settings.timeout_s)
                running[future] = (trial, key, retry, params)
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                trial, key, retry, params = running.pop(future)
                outcome = future.result()
                _record(trial, outcome)
                if outcome.state == "complete":
                    study.tell(trial, outcome.value)
                    continue
                study.tell(trial, state=TrialState.FAIL)
                if outcome.state in RETRY_STATES and retry < settings.max_retries:
                    todo.appendleft((key, retry + 1, (trial.number, params)))
    except BaseException:
        executor.interrupt()
        for trial, *_ in running.values():
            trial.set_user_attr(REASON_ATTR, "interrupted")
            study.tell(trial, state=TrialState.FAIL)
        raise


def run_optuna_optimize(context: RunContext) -> list[TrialResult]:
    """Run the requested trials with ``hwaware_optuna.optimize``; read them back.

    The study lives in a journal file of the run folder and samples with a
    ``HardwareAwareSampler`` on the run's private pool, so ``optimize``
    runs each trial on a LocalExecutor over that pool (one lease per trial). Retries are
    ``optimize``'s own (``max_retries``).
    """
    import os

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from hwaware_optuna import HardwareAwareSampler
    from hwaware_optuna._optimize import optimize

    settings = context.settings
    sampler = HardwareAwareSampler(
        devices=context.devices, seed=settings.seed, pool_name=context.pool.name,
        state_dir=context.pool.state_dir, skip_foreign_processes=False, scheduler="fcfs",
    )
    storage = JournalStorage(JournalFileBackend(os.path.join(context.run_dir, "study.log")))
    with _quiet_optuna():
        study = optuna.create_study(study_name="chaos", storage=storage, sampler=sampler)
        study = optimize(
            study, context.objective, n_trials=settings.trials, devices=context.devices,
            max_retries=settings.max_retries, trial_timeout=settings.timeout_s,
        )
    return results_of(study)
