"""How much of hwaware's gap is its first wave: hwaware after a first wave chosen by the oracle.

Until the first ``--until`` results exist (0: until the first result), every free
slot is filled by the oracle's plan for ``--plan`` (``q2``, ``q0.5`` or ``best``:
the plan that reaches that target soonest knowing the table and the hidden
speedups, then the harder targets' plans); from then on hwaware decides with its
defaults and learns from every result, the oracle's included. hwaware itself is
never told the speedups. The suite then runs as in ``scheduler_variant_pairs.py``
(same cache of baseline runs, same printout): the number of entry-baseline pairs
where the rule holds shows what a perfect first wave would be worth, and what is
left is the part that learning has to win. A probe, not a scheduler: no real
scheduler knows the table. Run from the repository root:

    python benchmarks/scheduler_first_wave_probe.py --plan q2 --seeds 20
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scheduler_variant_pairs

from hwaware_plugins.scheduling import DeviceClassInfo, History, SubspaceInfo
from hwaware_plugins.scheduling._hwaware import HwawareScheduler
from hwaware_plugins.scheduling._oracle import OracleScheduler

_ORDER = ("q2", "q0.5", "best")


def _patch(plan: str, until: int) -> None:
    """Make every HwawareScheduler built in this process (and its forks) start with the oracle."""
    setup, choose = HwawareScheduler.setup, HwawareScheduler.choose

    def probe_setup(
        self: Any, subspaces: Sequence[SubspaceInfo], classes: Sequence[DeviceClassInfo]
    ) -> None:
        self._probe_setup = (list(subspaces), list(classes))
        setup(self, subspaces, [dataclasses.replace(c, speedup={}) for c in classes])

    def reveal(
        self: Any, losses: Mapping[str, Sequence[float]], runtimes: Mapping[str, Sequence[float]]
    ) -> None:
        pooled = np.concatenate([np.asarray(v, dtype=float) for v in losses.values()])
        goals = {
            "q2": np.quantile(pooled, 0.02, method="inverted_cdf"),
            "q0.5": np.quantile(pooled, 0.005, method="inverted_cdf"),
            "best": pooled.min(),
        }
        pursued = [float(goals[label]) for label in _ORDER[_ORDER.index(plan) :]]
        self._probe_oracle = OracleScheduler(self.seed, targets=pursued)
        self._probe_oracle.setup(*self._probe_setup)
        self._probe_oracle.reveal(losses, runtimes)

    def probe_choose(self: Any, device_class: str, history: History) -> str:
        if history.n_complete > until:
            return str(choose(self, device_class, history))
        key = str(self._probe_oracle.choose(device_class, history))
        s, ci = self._keys.index(key), self._class_index[device_class]
        now = history.latest_finished_at
        self._chosen[s] += 1  # hwaware's own bookkeeping of what it launched
        self._launched[ci][s] += 1
        self._launch_sum[ci][s] += 0.0 if now is None else now
        if s in self._warming and self._tried(s) >= self.min_trials:
            self._warming.remove(s)
        return key

    HwawareScheduler.sees_speedups = True  # type: ignore[attr-defined]
    HwawareScheduler.reveal = reveal  # type: ignore[attr-defined]
    HwawareScheduler.setup = probe_setup  # type: ignore[method-assign,assignment]
    HwawareScheduler.choose = probe_choose  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", choices=_ORDER, default="q2")
    parser.add_argument(
        "--until",
        type=int,
        default=0,
        help="results before hwaware takes over (0: the first result)",
    )
    args, rest = parser.parse_known_args()
    _patch(args.plan, args.until)
    sys.argv = [sys.argv[0], "{}", *rest]
    return scheduler_variant_pairs.main()


if __name__ == "__main__":
    raise SystemExit(main())
