"""Outcome records and exit descriptions."""

from __future__ import annotations

import signal

from hwaware_plugins.executors import TASK_STATES, TaskOutcome
from hwaware_plugins.executors._outcome import describe_exit


def test_signal_deaths_are_named() -> None:
    text = describe_exit(-signal.SIGSEGV)
    assert "SIGSEGV" in text and "(-11)" in text


def test_sigkill_mentions_the_oom_killer() -> None:
    assert "out-of-memory killer" in describe_exit(-signal.SIGKILL)


def test_exit_codes_are_named() -> None:
    assert describe_exit(3) == "worker process exited with code 3 before returning a result"


def test_only_complete_is_ok() -> None:
    assert [TaskOutcome(state=s).ok for s in TASK_STATES] == [
        True, False, False, False, False, False,
    ]
