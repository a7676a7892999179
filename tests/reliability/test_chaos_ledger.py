"""The chaos ledger finds double leases and leftover processes (so the benchmark can fail)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from hwaware_plugins.chaos import Ledger


def _holder(run_dir: Path, slot: str, *, hold: bool) -> subprocess.Popen[str]:
    """A process that claims ``slot``, says whether it got it, and (if ``hold``) waits."""
    code = textwrap.dedent(f"""
        import sys
        from hwaware_plugins.chaos import Ledger
        ok = Ledger({str(run_dir)!r}).claim_slot({slot!r})
        print(ok, flush=True)
        if {hold!r}:
            sys.stdin.read()
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def test_two_live_holders_of_one_slot_are_a_double_lease(tmp_path: Path) -> None:
    first = _holder(tmp_path, "gpu:0#0", hold=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "True"
        second = _holder(tmp_path, "gpu:0#0", hold=False)
        assert second.communicate(timeout=30)[0].strip() == "False"
    finally:
        first.communicate(timeout=30)
    assert Ledger(tmp_path).double_leases() == 1


def test_a_dead_holders_marker_is_taken_over(tmp_path: Path) -> None:
    dead = _holder(tmp_path, "gpu:1#0", hold=False)  # exits without releasing
    assert dead.communicate(timeout=30)[0].strip() == "True"
    ledger = Ledger(tmp_path)
    assert ledger.claim_slot("gpu:1#0")
    ledger.release_slot("gpu:1#0")
    assert ledger.claim_slot("gpu:1#0")  # released: free again
    assert ledger.double_leases() == 0


def test_live_recorded_processes_are_reported_until_they_end(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        ledger.record_process(sleeper.pid)
        ledger.record_process(os.getpid())
        assert set(ledger.live_processes()) == {sleeper.pid, os.getpid()}
    finally:
        sleeper.kill()
        sleeper.wait()
    assert ledger.live_processes() == [os.getpid()]


def test_attempts_are_numbered_per_trial(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    assert [ledger.begin_attempt("trial/1") for _ in range(3)] == [0, 1, 2]
    assert ledger.begin_attempt("trial-2") == 0
    assert ledger.attempts("trial/1") == 3
