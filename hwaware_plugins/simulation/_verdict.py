"""The acceptance rule of a scheduling report: does hwaware beat each baseline enough?"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hwaware_plugins.simulation._benchmark import BASELINES

WIN_RATIO = 1.5
"""hwaware's time-to-target geometric mean must be this much better than a baseline's..."""
LIMITED_ORACLE = WIN_RATIO**2
"""...unless even the oracle's ratio against it is below this; then half the oracle's gain
(in log terms, its square root) is asked instead."""


def verdicts(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per baseline present in the report: hwaware's figures, the bound asked, and whether it holds.

    For baseline b: ``hwaware`` = hwaware's ``time_to_target_gmean`` against b;
    ``oracle`` = the oracle's (``None`` when the oracle was not run); ``bound``
    = 1.5, or ``sqrt(oracle)`` when the oracle's ratio is below 2.25;
    ``worst_target`` = hwaware's smallest ratio at a single target (must be
    >= 1.0); ``regret`` = b's regret over hwaware's (must be > 1.0); ``ok``:
    all three hold. Cost: O(baselines x targets).
    """
    out: dict[str, dict[str, Any]] = {}
    ratios = report.get("ratios", {})
    limit = report.get("limit", {})
    for name in BASELINES:
        ours = ratios.get(f"hwaware_vs_{name}")
        if ours is None or "time_to_target_gmean" not in ours:
            continue
        oracle_ratios = limit.get(f"oracle_vs_{name}")
        oracle = None if oracle_ratios is None else oracle_ratios["time_to_target_gmean"]
        bound = WIN_RATIO
        if oracle is not None and oracle < LIMITED_ORACLE:
            bound = math.sqrt(oracle)
        worst = min(ours["targets"].values())
        regret = ours.get("regret_auc")
        ok = (
            ours["time_to_target_gmean"] >= bound
            and worst >= 1.0
            and regret is not None
            and regret > 1.0
        )
        out[name] = {
            "hwaware": ours["time_to_target_gmean"],
            "oracle": oracle,
            "bound": bound,
            "worst_target": worst,
            "regret": regret,
            "ok": ok,
        }
    return out


def limit_violations(report: Mapping[str, Any]) -> list[str]:
    """Where the ``oracle`` is not the limit: a scheduler sooner at a target, or less regret.

    Compares the oracle's median hours to each target (unreached counted as
    the budget) and its median regret with every other scheduler's in the
    report; returns one line per violation (empty: the oracle is the limit,
    or was not run). Cost: O(schedulers x targets).
    """
    schedulers = report.get("schedulers", {})
    oracle = schedulers.get("oracle")
    if oracle is None:
        return []
    out: list[str] = []
    for name, s in schedulers.items():
        if name == "oracle":
            continue
        for label, hours in oracle.get("targets_hours", {}).items():
            theirs = s.get("targets_hours", {}).get(label)
            if theirs is not None and theirs < hours:
                out.append(f"{name} reached {label} sooner ({theirs:.3g} h < oracle {hours:.3g} h)")
        if s.get("regret_auc", math.inf) < oracle.get("regret_auc", -math.inf):
            ours, theirs = oracle["regret_auc"], s["regret_auc"]
            out.append(f"{name} has less regret ({theirs:.3g} < oracle {ours:.3g})")
    return out
