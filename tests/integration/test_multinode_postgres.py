"""Three ``hwaware worker`` processes acting as three nodes share one PostgreSQL study."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from ._mp_objectives import RUN_LOG_ENV

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
NODES = ("node-a", "node-b", "node-c")
N_TRIALS = 60


def _devices_file(folder: Path, node: str, index: int) -> Path:
    path = folder / f"{node}.toml"
    path.write_text(
        'remote_devices = "simulate"\n'  # the nodes are simulated on this machine
        f'[[device]]\nkind = "cpu"\nhost = "{node}"\ncores = 1\nslots = 1\n\n'
        f'[[device]]\nkind = "gpu"\nname = "FakeGPU"\nmemory_gb = 16\nhost = "{node}"\n'
        f'uuids = ["GPU-{index:08d}-0000-0000-0000-000000000000"]\n',
        encoding="utf-8",
    )
    return path


def test_three_nodes_share_the_budget_and_place_on_their_own_devices(
    postgres_url: str, tmp_path: Path
) -> None:
    optuna.create_study(study_name="multinode", storage=postgres_url)
    run_log = tmp_path / "runs.txt"
    env = {**os.environ, RUN_LOG_ENV: str(run_log), "XDG_RUNTIME_DIR": str(tmp_path)}
    workers = [
        subprocess.Popen(
            [
                sys.executable, "-m", "hwaware_plugins.cli", "worker",
                "--storage", postgres_url, "--study", "multinode",
                "--objective", "_mp_objectives:quadratic",
                "--devices", str(_devices_file(tmp_path, node, index)),
                "--n-trials", str(N_TRIALS), "--seed", str(10 * index), "--heartbeat", "5",
            ],
            cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for index, node in enumerate(NODES)
    ]
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], outputs

    trials = optuna.load_study(study_name="multinode", storage=postgres_url).trials
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    # One node is exact; nodes deciding at the same instant may each start the last trial.
    assert N_TRIALS <= len(trials) <= N_TRIALS + len(NODES) - 1
    calls = Counter(int(line.split()[0]) for line in run_log.read_text().splitlines())
    assert calls == Counter(t.number for t in trials)  # every trial ran exactly once
    for trial in trials:
        node = trial.user_attrs["hwaware:node"]
        assert node in NODES
        assert trial.user_attrs["hwaware:host"] == node
        assert trial.user_attrs["hwaware:device_id"].startswith(f"{node}/")
        # The nodes are simulated here: their GPUs pin none of this machine's (by uuid
        # they would name a GPU this machine does not have, by index one it does).
        assert trial.user_attrs["hwaware:device_kind"] in ("cpu", "gpu")
        assert (trial.user_attrs["cuda_visible"] or "") == ""
    assert {t.user_attrs["hwaware:node"] for t in trials} == set(NODES)
