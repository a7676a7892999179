"""``leaked_processes`` and ``kill_processes``: a worker ends what its task leaked, even when
it ignores SIGTERM, and keeps its live children; never itself or its parent."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

# Runs in its own session, like a worker: an orphan (its parent exited) that ignores
# SIGTERM, and a child to keep; then it splits and kills what leaked, and reports.
SCRIPT = """
import json, subprocess, sys
from hwaware_plugins.executors._strays import kill_processes, leaked_processes

STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")
parent = subprocess.Popen([sys.executable, "-c",
    "import subprocess, sys; print(subprocess.Popen([sys.executable, '-c', sys.argv[1]]).pid, "
    "flush=True)", STUBBORN], stdout=subprocess.PIPE, text=True)
orphan = int(parent.stdout.readline())
parent.stdout.readline()  # 'ready': the orphan ignores SIGTERM now
parent.wait()
kept = subprocess.Popen(["sleep", "60"])
leaked, spared = leaked_processes()
killed = kill_processes(leaked, grace_s=0.3)
print(json.dumps({"killed": sorted(killed), "spared": sorted(p.pid for p in spared),
                  "orphan": orphan, "kept": kept.pid}), flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_leaked_process_dies_even_when_it_ignores_sigterm_and_kept_ones_stay(
    tmp_path: Path,
) -> None:
    out = tmp_path / "report.json"
    with open(out, "w") as handle:  # a file, not a pipe: the kept child holds it open
        subprocess.run([sys.executable, "-c", SCRIPT], stdout=handle, start_new_session=True,
                       timeout=60, check=True)
    report = json.loads(out.read_text())
    try:
        assert report["killed"] == [report["orphan"]]
        assert report["spared"] == [report["kept"]]
        assert not _alive(report["orphan"])
        assert _alive(report["kept"])  # spared, and the script itself lived to report
    finally:
        psutil.Process(report["kept"]).kill()
        time.sleep(0.05)


# Runs in its parent's process group (not a worker's own session): one child of its own.
NOT_A_LEADER = """
import json, subprocess
from hwaware_plugins.executors._strays import leaked_processes

mine = subprocess.Popen(["sleep", "60"])
leaked, kept = leaked_processes()
print(json.dumps({"leaked": [p.pid for p in leaked], "kept": [p.pid for p in kept],
                  "mine": mine.pid}), flush=True)
mine.kill()
"""


def test_a_process_that_does_not_lead_its_group_sees_only_its_descendants(
    tmp_path: Path,
) -> None:
    sibling = subprocess.Popen(["sleep", "60"])  # same group as the script, not its child
    try:
        out = tmp_path / "report.json"
        with open(out, "w") as handle:
            subprocess.run([sys.executable, "-c", NOT_A_LEADER], stdout=handle, timeout=60,
                           check=True)
        report = json.loads(out.read_text())
        assert report["leaked"] == [] and report["kept"] == [report["mine"]]
        assert _alive(sibling.pid)  # a process of the caller's group is never touched
    finally:
        sibling.kill()
        sibling.wait()
