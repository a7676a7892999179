"""``hwaware plugins``: list every registered component and who provides it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hwaware_plugins._manager import components
from hwaware_plugins.cli._table import format_table


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``plugins`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "plugins", help="list registered samplers, pruners, executors, schedulers"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the registry as a table or as JSON."""
    rows = [
        {
            "kind": c.kind,
            "name": c.name,
            "framework": c.framework,
            "provider": c.provider,
            "description": c.description,
        }
        for c in components()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows, ["kind", "name", "framework", "provider", "description"]))
    return 0
