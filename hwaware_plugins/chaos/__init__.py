"""Chaos testing: a synthetic objective that really crashes, runs out of memory and hangs.

``hwaware bench chaos`` (see :mod:`hwaware_plugins.cli._bench_chaos`) runs it
through optuna or hyperopt on declared devices and audits the run: every
trial recorded with its reason, no slot leased twice, no process left over,
no lease held at the end. See ``docs/reliability.md``.

- :func:`run_chaos` / :class:`ChaosSettings`: one audited run, a JSON-ready report;
- :class:`ChaosObjective`, :class:`ChaosRates`, :func:`fault_for`: the faults;
- :class:`RetryingExecutor` (from :mod:`hwaware_plugins.executors`): retries
  crashed, out-of-memory and timed-out tasks of any executor on a fresh placement;
- :class:`Ledger`: the files workers leave for the audit.

Framework code is imported only when a run needs it.
"""

from hwaware_plugins.chaos._ledger import Ledger
from hwaware_plugins.chaos._objective import ChaosObjective, synthetic_loss
from hwaware_plugins.chaos._plan import FAULTS, ChaosRates, fault_for
from hwaware_plugins.chaos._report import TrialResult, summarize
from hwaware_plugins.chaos._run import ChaosSettings, chaos_devices, run_chaos
from hwaware_plugins.executors._retry import RetryingExecutor

__all__ = [
    "FAULTS",
    "ChaosObjective",
    "ChaosRates",
    "ChaosSettings",
    "Ledger",
    "RetryingExecutor",
    "TrialResult",
    "chaos_devices",
    "fault_for",
    "run_chaos",
    "summarize",
    "synthetic_loss",
]
