"""``hwaware worker``: join a shared Optuna study from this node (multi-node mode).

Run it on every node against the same storage (PostgreSQL for several
machines)::

    hwaware worker --storage postgresql://user@db/hpo --study svm \\
        --objective mypkg.objectives:svm --n-trials 200

This command belongs to the optuna adapter, which adds it to ``hwaware``
through the ``hwaware_add_commands`` hook (see ``_plugin``). Optuna and the
worker runtime are imported only when the command runs, so listing commands
stays cheap; without Optuna the command says how to install it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from typing import Any

from hwaware_plugins._progress import progress_bar
from hwaware_plugins.errors import ConfigError

_log = logging.getLogger("hwaware_plugins.cli")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``worker`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "worker",
        help="run trials of a shared optuna study on this node's devices (one process per slot)",
    )
    parser.add_argument("--storage", required=True, metavar="URL",
                        help="postgresql://..., sqlite:///FILE, redis://HOST:PORT or journal:FILE")
    parser.add_argument("--study", required=True, metavar="NAME", help="the study to join")
    parser.add_argument("--objective", required=True, metavar="MODULE:FUNCTION",
                        help="the objective, importable on this node")
    parser.add_argument("--pruner", metavar="MODULE:NAME",
                        help="the study's pruner: a pruner object, or a class or function "
                             "making one, e.g. optuna.pruners:NopPruner (default: optuna's "
                             "MedianPruner)")
    parser.add_argument("--devices", metavar="FILE",
                        help="declared-device TOML file (default: $HWAWARE_DEVICES, else probe)")
    parser.add_argument("--n-trials", type=int, metavar="N",
                        help="the study's total trial budget, counted in the storage "
                             "(with it, a progress bar of the study's ended trials)")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help="start no new trial after S seconds")
    parser.add_argument("--node", metavar="NAME",
                        help="node name recorded in hwaware:node (default: the devices' host)")
    parser.add_argument("--seed", type=int, help="seed of the samplers (offset per worker)")
    parser.add_argument("--max-retries", type=int, default=0, metavar="N",
                        help="queue a crashed trial again up to N times")
    parser.add_argument("--trial-timeout", type=parse_trial_timeout, metavar="S|KEY:S,...",
                        help="kill a trial's worker after S seconds, or per subspace: "
                             "'model=mlp:600,*:60' ('*' for the other subspaces)")
    parser.add_argument("--heartbeat", type=int, default=10, metavar="S",
                        help="RDB heartbeat interval; dead nodes' trials fail after 2*S")
    parser.set_defaults(handler=run)
    return parser


def parse_trial_timeout(text: str) -> float | dict[str, float]:
    """``--trial-timeout``: seconds, or ``KEY:SECONDS`` pairs separated by commas.

    The key is a subspace key (``hwaware:subspace``) or ``*`` for the rest;
    the last ``:`` of a pair separates it from the seconds.
    """
    try:
        return float(text)
    except ValueError:
        pass
    setting: dict[str, float] = {}
    for pair in text.split(","):
        key, sep, seconds = pair.strip().rpartition(":")
        try:
            if not sep or not key:
                raise ValueError
            setting[key] = float(seconds)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected seconds or KEY:SECONDS pairs like 'model=mlp:600,*:60', got {text!r}"
            ) from None
    return setting


def run(args: argparse.Namespace) -> int:
    """Run this node's workers until the budget or the timeout; print one summary line."""
    try:
        from hwaware_optuna._worker_node import run_node
    except ModuleNotFoundError as exc:
        if exc.name not in ("hwaware_optuna", "optuna"):
            raise
        raise ConfigError(
            "hwaware worker needs the optuna adapter: pip install hwaware-optuna"
        ) from None
    bar = None
    if args.n_trials is not None:
        bar = progress_bar(args.n_trials, label=f"study {args.study}",
                           quiet=getattr(args, "quiet", False))

    def progress(study_done: int, node: Any) -> None:
        if bar is not None:
            bar.advance_to(study_done, note=f"this node: {node.ended} ended")
        _log.info("study %s: %d trials ended (%d on this node)", args.study, study_done,
                  node.ended)

    wanted = (bar is not None and bar.enabled) or _log.isEnabledFor(logging.INFO)
    with bar if bar is not None else contextlib.nullcontext():
        summary = run_node(
            storage=args.storage,
            study_name=args.study,
            objective=args.objective,
            devices=args.devices,
            n_trials=args.n_trials,
            timeout=args.timeout,
            node=args.node,
            seed=args.seed,
            max_retries=args.max_retries,
            trial_timeout=args.trial_timeout,
            heartbeat_interval=args.heartbeat,
            progress=progress if wanted else None,
            pruner=args.pruner,
        )
    print(
        f"hwaware worker: {summary.started} trials started by {summary.workers_started} "
        f"worker processes ({summary.crashed} crashed, {summary.timed_out} timed out, "
        f"{summary.retried} retried)"
    )
    return 0
