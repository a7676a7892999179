"""The worker side: result records, and the persistent stdin protocol end to end."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time

from hwaware_plugins.executors._child import read_message, run_task
from hwaware_plugins.executors._payload import HEADER, dumps, loads, task_payload

from . import _tasks


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


def _start_worker(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwaware_plugins.executors._child", str(write_fd)],
        stdin=subprocess.PIPE, env=env, start_new_session=True, pass_fds=(write_fd,),
    )
    os.close(write_fd)
    return proc, read_fd


def _record(results: int) -> dict[str, object]:
    """The next task's record, after its "started" frame."""
    started = read_message(results)
    assert started == {"kind": "started"}
    record = read_message(results)
    assert isinstance(record, dict)
    return record


def _send(proc: subprocess.Popen[bytes], message: dict[str, object]) -> None:
    body = pickle.dumps(message)
    assert proc.stdin is not None
    proc.stdin.write(HEADER.pack(len(body)) + body)
    proc.stdin.flush()


def test_one_worker_runs_task_after_task_then_quits() -> None:
    proc, results = _start_worker(dict(os.environ, HWAWARE_PROBE="seen"))
    try:
        pids = []
        for label in ("first", "second"):
            payload = task_payload(os.getenv, ("HWAWARE_TASK_LABEL",), {})
            _send(proc, {"kind": "task", "env": {"HWAWARE_TASK_LABEL": label},
                         "payload": payload})
            record = _record(results)
            assert loads(record["value"]) == label and record["retire"] is None
            _send(proc, {"kind": "task", "env": {}, "payload": task_payload(os.getpid, (), {})})
            pids.append(loads(_record(results)["value"]))
        assert pids == [proc.pid, proc.pid]
        _send(proc, {"kind": "quit"})
        assert proc.wait(timeout=30) == 0
        assert read_message(results) is None  # end-of-file after the last record
    finally:
        proc.kill()
        proc.wait()
        os.close(results)


def test_an_oom_record_asks_for_a_new_worker() -> None:
    proc, results = _start_worker()
    try:
        payload = task_payload(_tasks.oom_on_small, (10**6,), {})
        _send(proc, {"kind": "task", "env": {"HWAWARE_DEVICE_ID": "gpu-small"},
                     "payload": payload})
        record = _record(results)
        assert record["is_oom"] and "out of accelerator memory" in record["retire"]
    finally:
        proc.kill()
        proc.wait()
        os.close(results)


def test_worker_kills_its_group_when_the_parent_goes_away() -> None:
    # Closing stdin is what the worker sees when its executor dies.
    proc, results = _start_worker()
    _send(proc, {"kind": "task", "env": {}, "payload": task_payload(time.sleep, (30,), {})})
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        assert proc.wait(timeout=30) == -9
    finally:
        os.close(results)


def test_an_idle_worker_leaves_when_the_parent_goes_away() -> None:
    proc, results = _start_worker()
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        assert proc.wait(timeout=30) == -9  # it ended its own group, itself included
    finally:
        os.close(results)
