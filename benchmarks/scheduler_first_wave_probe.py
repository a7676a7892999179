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

import scheduler_variant_pairs

import hwaware_plugins.simulation._benchmark as bench
from hwaware_plugins.scheduling import DeviceClassInfo, History, SubspaceInfo
from hwaware_plugins.scheduling._hwaware import HwawareScheduler
from hwaware_plugins.scheduling._oracle import OracleScheduler
from hwaware_plugins.simulation import DEFAULT_TARGETS, TrialTable, target_losses

_PLANS = ("q2", "q0.5", "best")
_GOALS: dict[str, float] = {}  # the benchmark's targets for the table being run


def set_goals(table: TrialTable) -> None:
    """Take the targets the benchmark judges ``table`` by (inherited by its forked runs)."""
    _GOALS.clear()
    _GOALS.update(target_losses(table, DEFAULT_TARGETS))


def _patch(plan: str, until: int) -> None:
    """Make every HwawareScheduler built in this process (and its forks) start with the oracle."""
    setup, choose = HwawareScheduler.setup, HwawareScheduler.choose
    run_benchmark = bench.run_benchmark

    def with_goals(table: TrialTable, *args: Any, **kwargs: Any) -> dict[str, Any]:
        set_goals(table)
        return run_benchmark(table, *args, **kwargs)

    def probe_setup(
        self: Any, subspaces: Sequence[SubspaceInfo], classes: Sequence[DeviceClassInfo]
    ) -> None:
        self._probe_setup = (list(subspaces), list(classes))
        setup(self, subspaces, [dataclasses.replace(c, speedup={}) for c in classes])

    def reveal(
        self: Any, losses: Mapping[str, Sequence[float]], runtimes: Mapping[str, Sequence[float]]
    ) -> None:
        # The benchmark's own oracle policy for that target (its plan, then the harder ones').
        options = bench.oracle_policies(_GOALS)[f"oracle:{plan}"]
        self._probe_oracle = OracleScheduler(self.seed, **options)
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
    bench.run_benchmark = with_goals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", choices=_PLANS, default="q2")
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
