"""``hwaware leases``: show the device leases of this node's pools; clear those of dead holders.

Every device pool of a node keeps its active leases in ``<state dir>/<pool>.json``
(see :mod:`hwaware_plugins.hardware._leasefile`). After a crash (``kill -9`` of
a coordinator, a node reboot without clearing ``/dev/shm``) records of dead
processes stay there until the next lease attempt on that pool reclaims them;
this command shows them and, with ``--clear-dead``, removes them at once.
Leases of live processes are never touched.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwaware_plugins.cli._table import format_table
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware._leasefile import (
    LeaseFile,
    LeaseRecord,
    default_state_dir,
    drop_dead_holders,
    holder_alive,
)

_COLUMNS = ("pool", "slot", "device", "pid", "holder", "held (s)", "label")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``leases`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "leases",
        help="show this node's device leases (--clear-dead: drop those of dead processes)",
    )
    parser.add_argument(
        "--state-dir", metavar="DIR",
        help="the pools' state folder (default: where pools keep it, "
             "$XDG_RUNTIME_DIR/hwaware or /dev/shm/hwaware-UID)",
    )  # fmt: skip
    parser.add_argument("--pool", metavar="NAME", help="only this pool")
    parser.add_argument(
        "--clear-dead", action="store_true",
        help="remove the leases whose holder process is dead (live holders are kept)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print a JSON list of leases")
    parser.set_defaults(handler=run)
    return parser


@dataclass(frozen=True)
class PoolLease:
    """One lease record of a pool and whether its holder process still runs."""

    pool: str
    record: LeaseRecord
    alive: bool

    def row(self, now: float) -> dict[str, Any]:
        """The table row (and JSON object) of this lease."""
        return {
            "pool": self.pool,
            "slot": self.record.slot_id,
            "device": self.record.device_id,
            "pid": self.record.pid,
            "holder": "alive" if self.alive else "dead",
            "held (s)": round(max(0.0, now - self.record.acquired_at), 1),
            "label": self.record.label,
        }


def pool_names(state_dir: Path, only: str | None = None) -> list[str]:
    """The pools with a state file in ``state_dir``, sorted (``only``: that one if present)."""
    if not state_dir.is_dir():
        return []
    names = sorted(path.stem for path in state_dir.glob("*.json") if path.is_file())
    return [name for name in names if only is None or name == only]


def read_leases(state_dir: Path, names: Sequence[str], *, clear_dead: bool) -> tuple[
    list[PoolLease], int
]:
    """The leases of ``names`` (each pool read under its lock) and how many were cleared.

    With ``clear_dead`` the records of dead holders are removed in the same
    locked transaction that reads them, so a lease taken meanwhile is never
    lost. Cost: one locked read (and at most one atomic write) per pool plus
    one liveness check per holder process.

    :raises ConfigError: a state file is corrupt or of another version.
    """
    found: list[PoolLease] = []
    cleared = 0
    for name in names:
        with LeaseFile(state_dir, name).transaction() as records:
            if clear_dead:
                cleared += len(drop_dead_holders(records))
            found.extend(PoolLease(name, r, holder_alive(r)) for r in records)
    return found, cleared


def run(args: argparse.Namespace) -> int:
    """Print the leases (a table and a one-line summary, or JSON); 0 on success."""
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    if args.state_dir and not state_dir.is_dir():
        raise ConfigError(f"--state-dir {args.state_dir!r} is not a folder")
    names = pool_names(state_dir, args.pool)
    if args.pool and not names:
        known = ", ".join(pool_names(state_dir)) or "none"
        raise ConfigError(f"no pool {args.pool!r} in {state_dir}; pools there: {known}")
    leases, cleared = read_leases(state_dir, names, clear_dead=args.clear_dead)
    now = time.time()
    rows = [lease.row(now) for lease in leases]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if args.clear_dead:
        print(f"cleared {cleared} lease{'s' * (cleared != 1)} of dead holders")
    if rows:
        print(format_table(rows, _COLUMNS))
    dead = sum(1 for lease in leases if not lease.alive)
    again = "hwaware leases --clear-dead"
    if args.state_dir:
        again += f" --state-dir {shlex.quote(str(args.state_dir))}"
    if args.pool:
        again += f" --pool {shlex.quote(str(args.pool))}"
    hint = f" ({dead} of dead holders: {again})" if dead else ""
    holding = len({row["pool"] for row in rows})
    of_all = f" of {len(names)}" if holding != len(names) else ""
    print(f"{len(rows)} lease{'s' * (len(rows) != 1)} held in {holding}{of_all} "
          f"pool{'s' * ((len(names) if of_all else holding) != 1)} under {state_dir}{hint}")
    return 0
