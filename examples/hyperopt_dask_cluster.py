"""Hyperopt on a Dask cluster: every evaluation pinned to a device of the worker that runs it.

``HardwareAwareTrials(executor=DaskExecutor(...))`` turns each evaluation into
one Dask task; the worker that takes it runs it in a fresh process pinned to
one of its own devices (``CUDA_VISIBLE_DEVICES`` by UUID, CPU affinity), and
the trial document records where it ran. ``hwaware_hyperopt.suggest`` picks
the ``hp.choice`` branch for the device class of the next free slot.

Try it on one machine with a local cluster of pretend nodes (``node-a``,
``node-b``, ``node-c``: one CPU slot each, plus a declared GPU on the first
two; no GPU needed, the scikit-learn objective runs on the CPU anyway)::

    python examples/hyperopt_dask_cluster.py --local --max-evals 12

On a real cluster, start ``dask scheduler`` and ``dask worker tcp://HOST:8786``
on every node (each worker probes its own devices, or reads the file named by
``HWAWARE_DEVICES`` in its environment), then::

    python examples/hyperopt_dask_cluster.py --scheduler tcp://HOST:8786
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from hwaware_hyperopt import MISC_KEY, HardwareAwareTrials, suggest
from hyperopt import fmin, hp, space_eval

from hwaware_plugins.executors import DaskExecutor

NODES = ("node-a", "node-b", "node-c")

SPACE = hp.choice("model", [
    {"type": "svm", "C": hp.loguniform("svm_C", -3, 4), "gamma": hp.loguniform("gamma", -7, 0)},
    {"type": "knn", "n_neighbors": hp.quniform("knn_k", 1, 20, 1)},
    {"type": "logreg", "C": hp.loguniform("lr_C", -4, 3)},
])


def objective(point: dict[str, Any]) -> float:
    """1 - mean 3-fold cross-validated accuracy on digits (runs in a pinned worker process)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    model: Any
    if point["type"] == "svm":
        model = SVC(C=point["C"], gamma=point["gamma"])
    elif point["type"] == "knn":
        model = KNeighborsClassifier(n_neighbors=int(point["n_neighbors"]))
    else:
        model = LogisticRegression(C=point["C"], max_iter=300)
    x, y = load_digits(return_X_y=True)
    return 1.0 - float(cross_val_score(model, x / 16.0, y, cv=3).mean())


def node_devices(folder: Path, node: str, index: int) -> str:
    """Write a declared-device file for a pretend node; its path.

    Every node has one CPU slot; all but the last also a declared 16 GB GPU. The
    nodes are pretend ones on this machine, so the file says to lease them here.
    """
    text = 'remote_devices = "simulate"\n'
    text += f'[[device]]\nkind = "cpu"\nhost = "{node}"\ncores = 1\nslots = 1\n'
    if index < len(NODES) - 1:
        text += (f'\n[[device]]\nkind = "gpu"\nname = "DemoGPU"\nmemory_gb = 16\n'
                 f'host = "{node}"\nuuids = ["GPU-{index:08d}-0000-0000-0000-000000000000"]\n')
    path = folder / f"{node}.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@contextlib.contextmanager
def local_executor(state_dir: str) -> Iterator[DaskExecutor]:
    """A LocalCluster with one worker per pretend node, each given its own devices."""
    from distributed import Client, LocalCluster

    folder = Path(state_dir)
    devices = {str(i): node_devices(folder, node, i) for i, node in enumerate(NODES)}
    cluster = LocalCluster(n_workers=len(NODES), threads_per_worker=2,  # type: ignore[no-untyped-call]
                           processes=False, dashboard_address=None)
    with cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
        executor = DaskExecutor(client, devices=devices, state_dir=state_dir)
        try:
            yield executor
        finally:
            executor.shutdown(cancel_running=True)


@contextlib.contextmanager
def remote_executor(address: str) -> Iterator[DaskExecutor]:
    """A DaskExecutor on the cluster at ``address`` (workers keep their own devices)."""
    executor = DaskExecutor(address)
    try:
        yield executor
    finally:
        executor.shutdown()


def run(executor: DaskExecutor, max_evals: int, seed: int) -> None:
    """Run the search on ``executor``; print each evaluation's placement and the best point."""
    print("devices:", ", ".join(f"{d.id} ({d.kind}, {d.host})" for d in executor.devices()))
    trials = HardwareAwareTrials(executor=executor)
    best = fmin(objective, SPACE, algo=suggest, max_evals=max_evals, trials=trials,
                rstate=np.random.default_rng(seed), show_progressbar=False)
    for doc in trials.trials:
        info = doc["misc"].get(MISC_KEY, {})
        loss = doc["result"].get("loss")
        shown = f"{loss:.4f}" if isinstance(loss, float) else str(doc["result"].get("status"))
        print(f"  eval {doc['tid']:3d}: {info.get('subspace', '?'):14s} on "
              f"{info.get('device_id')} [{info.get('device_class')}] loss {shown}")
    per_host = Counter(str(info.get("device_id", "?")).split("/")[0]
                       for info in (d["misc"].get(MISC_KEY, {}) for d in trials.trials))
    print(f"evaluations per node: {dict(sorted(per_host.items()))}")
    print(f"best loss {min(trials.losses()):.4f} with {space_eval(SPACE, best)}")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line; run on a local pretend cluster or on ``--scheduler``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", action="store_true",
                       help="start a local cluster of three pretend nodes")
    where.add_argument("--scheduler", metavar="ADDRESS", help="e.g. tcp://HOST:8786")
    parser.add_argument("--max-evals", type=int, default=12, help="evaluations (default 12)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.max_evals < 1:
        parser.error("--max-evals must be at least 1")
    with tempfile.TemporaryDirectory() as state_dir:
        executor = local_executor(state_dir) if args.local else remote_executor(args.scheduler)
        with executor as ready:
            run(ready, args.max_evals, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
