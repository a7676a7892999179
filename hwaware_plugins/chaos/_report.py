"""Accounting of a chaos run: what each trial ended as, and the figures of the report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hwaware_plugins.chaos._plan import FAULTS

TERMINAL_STATES: tuple[str, ...] = ("complete", "crash", "oom", "timeout", "fail", "cancelled")
"""Final states a trial can be recorded with (the executor's outcome states)."""


@dataclass(frozen=True)
class TrialResult:
    """How one requested trial ended, as read back from the framework's storage.

    :param key: the trial's key (the same for all of its retries).
    :param state: the final state, one of :data:`TERMINAL_STATES`, or the
        framework's own state name when the trial was left unfinished.
    :param attempt_states: the state of every attempt that ran on a device
        (OOM re-placements and retries included), in order.
    :param recorded: True when the storage holds the trial in a finished state
        with its reason (a failed trial must say why).
    """

    key: str
    state: str
    attempt_states: tuple[str, ...] = ()
    recorded: bool = True


@dataclass(frozen=True)
class RunChecks:
    """What the run found outside the trials' records."""

    double_leases: int = 0
    orphan_processes: int = 0
    leases_held_at_end: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)


def summarize(
    results: Sequence[TrialResult], *, requested: int, checks: RunChecks,
    min_completed_fraction: float | None = None,
) -> dict[str, Any]:
    """The chaos report: counts per final state, retries, and the acceptance checks.

    ``failed`` always has the keys ``crash``, ``oom``, ``timeout`` and
    ``other`` (the objective raised, the trial was cancelled or never
    recorded); trials requested but absent from ``results`` count as ``other``
    and as ``unrecorded``. ``retried_then_completed`` counts completed trials
    that needed more than one attempt. ``injected`` counts attempts per fault.
    ``checks`` holds each acceptance criterion as a bool (and ``passed`` all
    of them). Pure; O(attempts).
    """
    final = Counter(r.state for r in results)
    failed = {name: final[name] for name in FAULTS}
    completed = final["complete"]
    lost = max(0, requested - len(results))
    failed["other"] = len(results) - completed - sum(failed.values()) + lost
    attempts = Counter(s for r in results for s in r.attempt_states)
    unrecorded = sum(1 for r in results if not r.recorded) + lost
    report: dict[str, Any] = {
        "requested": requested,
        "completed": completed,
        "failed": failed,
        "retried_then_completed": sum(
            1 for r in results if r.state == "complete" and len(r.attempt_states) > 1
        ),
        "attempts": sum(attempts.values()),
        "injected": {name: attempts[name] for name in FAULTS},
        "unrecorded": unrecorded,
        "double_leases": checks.double_leases,
        "orphan_processes": checks.orphan_processes,
        "leases_held_at_end": checks.leases_held_at_end,
    }
    report.update(checks.extra)
    verdict = {
        "every_trial_recorded": unrecorded == 0,
        "totals_add_up": completed + sum(failed.values()) == requested,
        "no_double_leases": checks.double_leases == 0,
        "no_orphan_processes": checks.orphan_processes == 0,
        "no_leases_held_at_end": checks.leases_held_at_end == 0,
    }
    if min_completed_fraction is not None:
        verdict["completed_fraction"] = completed >= min_completed_fraction * requested
    verdict["passed"] = all(verdict.values())
    report["checks"] = verdict
    return report
