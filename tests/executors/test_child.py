"""The worker side: result records, and the stdin protocol end to end."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

from hwaware_plugins.executors._child import run_task
from hwaware_plugins.executors._payload import HEADER, dumps, loads, task_payload


def test_value_record() -> None:
    record = run_task(dumps((pow, (2, 10), {})))
    assert record["ok"] and loads(record["value"]) == 1024
    assert record["runtime_s"] >= 0 and record["peak_rss_mb"] > 0


def test_exception_record_carries_type_message_traceback() -> None:
    record = run_task(dumps((int, ("x",), {})))
    assert not record["ok"] and record["exc_type"] == "ValueError"
    assert "invalid literal" in record["exc_message"]
    assert "Traceback" in record["traceback"] and not record["is_oom"]


def test_oom_record_is_flagged() -> None:
    def oom() -> None:
        raise RuntimeError("CUDA out of memory. Tried to allocate 1 GiB")

    assert run_task(dumps((oom, (), {})))["is_oom"]


def test_unpicklable_return_value_is_a_failure() -> None:
    import threading

    record = run_task(dumps((threading.Lock, (), {})))
    assert not record["ok"] and "return value cannot be pickled" in record["exc_message"]


def test_worker_protocol_end_to_end(tmp_path: Path) -> None:
    result = tmp_path / "result.pkl"
    payload = task_payload(os.getenv, ("HWAWARE_PROBE",), {})
    env = dict(os.environ, HWAWARE_PROBE="seen")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwaware_plugins.executors._child", str(result)],
        stdin=subprocess.PIPE, env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(HEADER.pack(len(payload)) + payload)
    proc.stdin.flush()
    assert proc.wait(timeout=30) == 0
    proc.stdin.close()
    record = pickle.loads(result.read_bytes())
    assert loads(record["value"]) == "seen"


def test_worker_kills_its_group_when_the_parent_goes_away(tmp_path: Path) -> None:
    # Closing stdin is what the worker sees when its executor dies.
    payload = task_payload(__import__("time").sleep, (30,), {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwaware_plugins.executors._child", str(tmp_path / "r.pkl")],
        stdin=subprocess.PIPE, start_new_session=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(HEADER.pack(len(payload)) + payload)
    proc.stdin.close()
    assert proc.wait(timeout=30) == -9
