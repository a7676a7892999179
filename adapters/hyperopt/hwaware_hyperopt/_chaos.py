"""The chaos benchmark's hyperopt driver: ``fmin`` with ``HardwareAwareTrials``.

Registered as the component ``fmin`` of kind
:data:`~hwaware_plugins.hookspecs.CHAOS_DRIVER_KIND` (framework ``hyperopt``) by this
adapter's plugin, so ``hwaware bench chaos --framework hyperopt`` finds it
without the core importing hyperopt. Imports hyperopt when called.
"""

from __future__ import annotations

from typing import Any

from hwaware_plugins.chaos import RunContext, TrialResult

LABEL_PREFIX = "hyperopt-trial-"
"""How ``HardwareAwareTrials`` labels its tasks (the chaos objective's trial key)."""


def _result(doc: dict[str, Any]) -> TrialResult:
    from hyperopt import base

    info = doc.get("misc", {}).get("hwaware", {})
    # An attempt without a device is a placement that never ran ("re-placement impossible").
    attempts = tuple(str(a[1]) for a in info.get("attempts") or [] if a[0] is not None)
    key = f"{LABEL_PREFIX}{doc['tid']}"
    if doc["state"] == base.JOB_STATE_DONE:
        ok = doc.get("result", {}).get("status") == base.STATUS_OK
        return TrialResult(key, "complete" if ok else "fail", attempts)
    if doc["state"] == base.JOB_STATE_ERROR:
        reason = doc["misc"].get("error")
        return TrialResult(key, str(info.get("state", "fail")), attempts, recorded=bool(reason))
    if doc["state"] == base.JOB_STATE_CANCEL:
        return TrialResult(key, "cancelled", attempts)
    return TrialResult(key, f"hyperopt-state-{doc['state']}", attempts, recorded=False)


def run_hyperopt(context: RunContext) -> list[TrialResult]:
    """Run ``fmin`` over a two-parameter space; return every trial's result.

    Failed evaluations are recorded (``catch_eval_exceptions=True``) as ERROR
    trials whose ``misc["hwaware"]`` says ``crash``, ``oom`` or ``timeout``.
    Retries are ``HardwareAwareTrials(max_retries=...)``'s: a retried trial
    keeps its trial id and its document lists every attempt; out-of-memory
    attempts are re-placed by the executor on a bigger GPU first.
    """
    import numpy as np
    from hyperopt import fmin, hp, tpe

    from hwaware_hyperopt import HardwareAwareTrials

    settings = context.settings
    trials = HardwareAwareTrials(
        devices=context.devices, executor=context.executor, timeout_per_trial=settings.timeout_s,
        parallelism=context.slots, max_retries=settings.max_retries,
    )
    space = {"x": hp.uniform("x", -1.0, 1.0), "y": hp.uniform("y", -1.0, 1.0)}
    fmin(
        context.objective, space, algo=tpe.suggest, max_evals=settings.trials, trials=trials,
        rstate=np.random.default_rng(settings.seed), catch_eval_exceptions=True,
        show_progressbar=False,
    )
    return [_result(doc) for doc in trials._dynamic_trials]
