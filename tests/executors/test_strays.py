"""``kill_strays``: a worker ends what its task left running, never itself or its parent."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

# Runs in its own session, like a worker: a child, a child that ignores SIGTERM, and a
# child to keep; then it kills the strays and reports.
SCRIPT = """
import json, signal, subprocess, sys
from hwaware_plugins.executors._strays import kill_strays

plain = subprocess.Popen(["sleep", "60"])
stubborn = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
stubborn.stdout.readline()
kept = subprocess.Popen(["sleep", "60"])
killed = kill_strays(keep={kept.pid}, grace_s=0.3)
print(json.dumps({"killed": sorted(killed), "plain": plain.pid, "stubborn": stubborn.pid,
                  "kept": kept.pid}), flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_strays_die_even_when_they_ignore_sigterm_and_kept_ones_stay(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    with open(out, "w") as handle:  # a file, not a pipe: the kept child holds it open
        subprocess.run([sys.executable, "-c", SCRIPT], stdout=handle, start_new_session=True,
                       timeout=60, check=True)
    report = json.loads(out.read_text())
    try:
        assert report["killed"] == sorted([report["plain"], report["stubborn"]])
        assert not _alive(report["plain"]) and not _alive(report["stubborn"])
        assert _alive(report["kept"])  # spared, and the script itself lived to report
    finally:
        psutil.Process(report["kept"]).kill()
        time.sleep(0.05)


# Runs in its parent's process group (not a worker's own session): one child of its own.
NOT_A_LEADER = """
import json, subprocess
from hwaware_plugins.executors._strays import kill_strays

mine = subprocess.Popen(["sleep", "60"])
print(json.dumps({"killed": kill_strays(grace_s=0.3), "mine": mine.pid}), flush=True)
"""


def test_a_process_that_does_not_lead_its_group_kills_only_its_descendants(
    tmp_path: Path,
) -> None:
    sibling = subprocess.Popen(["sleep", "60"])  # same group as the script, not its child
    try:
        out = tmp_path / "report.json"
        with open(out, "w") as handle:
            subprocess.run([sys.executable, "-c", NOT_A_LEADER], stdout=handle, timeout=60,
                           check=True)
        report = json.loads(out.read_text())
        assert report["killed"] == [report["mine"]]
        assert not _alive(report["mine"])
        assert _alive(sibling.pid)  # a process of the caller's group is never touched
    finally:
        sibling.kill()
        sibling.wait()
