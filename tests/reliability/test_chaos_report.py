"""The chaos report's accounting: totals add up, every check can fail."""

from __future__ import annotations

from hwaware_plugins.chaos import TrialResult, summarize
from hwaware_plugins.chaos._report import RunChecks


def _results() -> list[TrialResult]:
    return [
        TrialResult("a", "complete", ("complete",)),
        TrialResult("b", "complete", ("crash", "oom", "complete")),
        TrialResult("c", "crash", ("crash", "crash")),
        TrialResult("d", "timeout", ("timeout",)),
        TrialResult("e", "fail", ("fail",)),
    ]


def test_counts_and_checks_of_a_clean_run() -> None:
    report = summarize(_results(), requested=5, checks=RunChecks())
    assert report["completed"] == 2
    assert report["failed"] == {"crash": 1, "oom": 0, "timeout": 1, "other": 1}
    assert report["retried_then_completed"] == 1
    assert report["injected"] == {"crash": 3, "oom": 1, "timeout": 1}
    assert report["attempts"] == 8
    assert report["checks"]["passed"]


def test_missing_or_unrecorded_trials_fail_the_run() -> None:
    results = [*_results()[:4], TrialResult("e", "running", (), recorded=False)]
    report = summarize(results, requested=6, checks=RunChecks())
    assert report["unrecorded"] == 2
    assert report["completed"] + sum(report["failed"].values()) == 6
    assert not report["checks"]["every_trial_recorded"]
    assert not report["checks"]["passed"]


def test_leases_processes_and_completion_are_checked() -> None:
    checks = RunChecks(double_leases=1, orphan_processes=2, leases_held_at_end=3)
    report = summarize(_results(), requested=5, checks=checks, min_completed_fraction=0.95)
    verdict = report["checks"]
    assert not verdict["no_double_leases"]
    assert not verdict["no_orphan_processes"]
    assert not verdict["no_leases_held_at_end"]
    assert not verdict["completed_fraction"]
    assert (report["double_leases"], report["orphan_processes"], report["leases_held_at_end"]) \
        == (1, 2, 3)
