"""One Optuna study spread over several nodes through PostgreSQL with ``hwaware worker``.

On a database every node can reach, create the study once::

    python examples/optuna_multinode_postgres.py --create \\
        --storage postgresql+psycopg2://user@db/hpo

then on every node (each uses its own devices: probed, or declared with --devices)::

    hwaware worker --storage postgresql+psycopg2://user@db/hpo --study multinode-demo \\
        --objective optuna_multinode_postgres:objective --n-trials 60

(run it from this folder, or put the objective in an installed module). Each
node runs its trials in worker processes pinned to its device slots; the budget (60) is
counted in the database, so all nodes stop together; a node that dies has its
running trials failed through the RDB heartbeat.

To try it on one machine as three pretend nodes ("node-a/b/c", declared CPU and
GPU slots; no GPU needed)::

    python examples/optuna_multinode_postgres.py --local \\
        --storage postgresql+psycopg2://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import optuna

STUDY = "multinode-demo"
NODES = ("node-a", "node-b", "node-c")


def objective(trial: optuna.trial.Trial) -> float:
    """A tiny conditional objective; it only needs to be importable on every node."""
    model = trial.suggest_categorical("model", ["linear", "tree"])
    if model == "linear":
        alpha = trial.suggest_float("alpha", 1e-4, 1.0, log=True)
        return abs(alpha - 0.01)
    depth = trial.suggest_int("depth", 1, 12)
    return abs(depth - 6) / 10


def _devices_file(folder: Path, node: str, index: int) -> str:
    path = folder / f"{node}.toml"
    path.write_text(  # pretend nodes on this machine: lease their devices here
        'remote_devices = "simulate"\n'
        f'[[device]]\nkind = "cpu"\nhost = "{node}"\ncores = 1\nslots = 1\n\n'
        f'[[device]]\nkind = "gpu"\nname = "DemoGPU"\nmemory_gb = 16\nhost = "{node}"\n'
        f'uuids = ["GPU-{index:08d}-0000-0000-0000-000000000000"]\n',
        encoding="utf-8",
    )
    return str(path)


def run_local(storage: str, n_trials: int) -> None:
    """Start three ``hwaware worker`` processes as three nodes; wait; print where trials ran."""
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as folder:
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "hwaware_plugins.cli", "worker", "--storage", storage,
                 "--study", STUDY, "--objective", "optuna_multinode_postgres:objective",
                 "--devices", _devices_file(Path(folder), node, index),
                 "--n-trials", str(n_trials), "--seed", str(100 * index)],
                cwd=here, env={**os.environ, "XDG_RUNTIME_DIR": folder},
            )
            for index, node in enumerate(NODES)
        ]
        codes = [worker.wait() for worker in workers]
    study = optuna.load_study(study_name=STUDY, storage=storage)
    per_node = Counter(t.user_attrs.get("hwaware:node") for t in study.trials)
    print(f"exit codes {codes}; {len(study.trials)} trials; per node {dict(per_node)}")
    print(f"best {study.best_value:.4f} with {study.best_params}")


def main() -> None:
    """Parse the command line; create the study; with --local also run three workers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="postgresql+psycopg2://user@host/database")
    parser.add_argument("--create", action="store_true", help="only create the study")
    parser.add_argument("--local", action="store_true", help="run three workers here")
    parser.add_argument("--n-trials", type=int, default=60)
    args = parser.parse_args()
    optuna.create_study(study_name=STUDY, storage=args.storage, load_if_exists=True)
    if args.local:
        run_local(args.storage, args.n_trials)
    elif not args.create:
        print(f"study {STUDY!r} is ready; start 'hwaware worker' on each node (see --help)")


if __name__ == "__main__":
    main()
