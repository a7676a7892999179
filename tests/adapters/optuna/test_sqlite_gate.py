"""``optimize`` forks its workers while an SQLite study is open, and only when that is safe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import optuna
import pytest
from hwaware_optuna._sqlite_gate import sqlite_engine, sqlite_fork_gate
from optuna.storages import RDBStorage
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from hwaware_plugins import _forksafe
from hwaware_plugins.executors import _fork

# Run in a fresh interpreter: this test process may hold other tests' SQLite files open,
# which no gate vouches for, and then every worker is spawned.
_SCRIPT = textwrap.dedent("""
    import json, sys, threading, time
    import optuna
    from hwaware_optuna import optimize

    def objective(trial):
        import __main__
        spec = getattr(__main__, "__spec__", None)
        trial.set_user_attr("worker_main", spec.name if spec else "")
        x = trial.suggest_float("x", -1, 1)
        time.sleep(0.01)
        return x * x

    if __name__ == "__main__":
        folder, engine_kwargs = sys.argv[1], json.loads(sys.argv[2])
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with open(f"{folder}/devices.toml", "w") as handle:
            handle.write('[[device]]\\nkind = "cpu"\\ncount = 3\\n')
        storage = optuna.storages.RDBStorage(f"sqlite:///{folder}/study.db",
                                             engine_kwargs=engine_kwargs)
        study = optuna.create_study(storage=storage)
        side = optuna.create_study(storage=storage, study_name="side")
        stop = threading.Event()

        def busy():  # another thread of the coordinator using the database all along
            while not stop.is_set():
                side.tell(side.ask(), 1.0)

        thread = threading.Thread(target=busy)
        thread.start()
        try:
            optimize(study, objective, n_trials=24, devices=f"{folder}/devices.toml",
                     max_retries=0)
        finally:
            stop.set()
            thread.join()
        trials = study.get_trials()
        print(json.dumps({
            "states": sorted({t.state.name for t in trials}), "count": len(trials),
            "mains": sorted({t.user_attrs.get("worker_main", "?") for t in trials}),
            "side": len(side.get_trials()),
        }))
""")

_CHILD = "hwaware_plugins.executors._child"


def _run(tmp_path: Path, engine_kwargs: dict[str, object]) -> dict[str, object]:
    script = tmp_path / "run_sqlite.py"
    script.write_text(_SCRIPT, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(tmp_path), json.dumps(engine_kwargs)],
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "database is locked" not in done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_optimize_forks_workers_beside_a_busy_sqlite_study_and_loses_nothing(
        tmp_path: Path) -> None:
    result = _run(tmp_path, {})
    assert result["states"] == ["COMPLETE"]
    assert result["count"] == 24
    assert _CHILD not in result["mains"]  # forked: __main__ is the coordinator's
    assert int(str(result["side"])) > 0


def test_a_pool_the_gate_cannot_vouch_for_gets_spawned_workers(tmp_path: Path) -> None:
    result = _run(tmp_path, {"pool_pre_ping": True})
    assert result["states"] == ["COMPLETE"]
    assert result["count"] == 24
    assert result["mains"] == [_CHILD]


def test_only_sqlite_files_behind_sqlalchemys_default_pool_are_vouched_for(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    found = sqlite_engine(optuna.create_study(storage=url)._storage)
    assert found is not None
    assert found[1] == str(tmp_path / "study.db")
    assert sqlite_engine(RDBStorage(url, engine_kwargs={"pool_pre_ping": True})) is None
    assert sqlite_engine(RDBStorage(url, engine_kwargs={"poolclass": NullPool})) is None
    assert sqlite_engine(optuna.storages.InMemoryStorage()) is None


def test_the_gate_waits_for_a_checked_out_connection_and_goes_when_the_run_ends(
        tmp_path: Path) -> None:
    storage = RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    with sqlite_fork_gate(storage) as gate:
        assert gate is not None
        assert str(tmp_path / "study.db") in set(_forksafe.vouched_connections())
        with storage.engine.connect() as connection:
            connection.execute(text("select 1"))
            released = threading.Timer(0.2, connection.close)
            released.start()
            with _forksafe.databases_idle(5.0) as idle:  # waits for the check-in
                assert idle
            released.join()
        with _forksafe.databases_idle(1.0) as idle:
            assert idle
        with storage.engine.connect(), _forksafe.databases_idle(0.1) as idle:
            assert not idle  # busy past the wait: spoiled, workers get spawned
        assert gate.spoiled
    assert set(_forksafe.vouched_connections()) == set()


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://"])
def test_in_memory_sqlite_is_left_alone(url: str) -> None:
    with sqlite_fork_gate(RDBStorage(url)) as gate:
        assert gate is None


def test_a_connection_in_use_before_the_gate_came_is_waited_for(tmp_path: Path) -> None:
    storage = RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    early = storage.engine.connect()
    early.execute(text("select 1"))
    with sqlite_fork_gate(storage):
        with storage.engine.connect() as later:  # checked out and in under the gate
            later.execute(text("select 1"))
        # The early connection's check-in must not be taken for the later one's.
        threading.Timer(0.3, early.close).start()
        started = time.monotonic()
        with _forksafe.databases_idle(5.0) as idle:
            assert idle
            assert time.monotonic() - started >= 0.25


def test_another_client_of_the_same_file_here_is_not_vouched_for(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    path = os.path.realpath(tmp_path / "study.db")
    storage, other = RDBStorage(url), RDBStorage(url)  # two engines, each with a connection
    with sqlite_fork_gate(storage):
        assert _fork._sqlite_descriptors()[path] > _forksafe.vouched_connections()[path]
        other.engine.dispose()
        assert _fork._sqlite_descriptors()[path] <= _forksafe.vouched_connections()[path]


def test_a_study_on_another_storage_pays_no_sqlalchemy_import(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
        from hwaware_optuna._sqlite_gate import sqlite_fork_gate
        storage = JournalStorage(JournalFileBackend({str(tmp_path / "study.log")!r}))
        with sqlite_fork_gate(storage) as gate:
            print(gate, "sqlalchemy" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "False"]
