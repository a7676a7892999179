"""Chaos testing: a synthetic objective that really crashes, runs out of memory and hangs.

``hwaware bench chaos`` (see :mod:`hwaware_plugins.cli._bench_chaos`) runs it
through optuna or hyperopt on declared devices and audits the run: every
trial recorded with its reason, no slot leased twice, no process left over,
no lease held at the end. See ``docs/reliability.md``.

- :func:`run_chaos` / :class:`ChaosSettings`: one audited run, a JSON-ready report;
- :class:`ChaosObjective`, :class:`ChaosRates`, :func:`fault_for`: the faults;
- :class:`RetryingExecutor` (from :mod:`hwaware_plugins.executors`): retries
  crashed, out-of-memory and timed-out tasks of any executor on a fresh placement;
- :class:`Ledger`: the files workers leave for the audit;
- :class:`RunContext`, :data:`DRIVER_KIND`: what a framework driver receives, and
  the component kind under which adapters register their drivers.

The drivers that run trials through a framework live in the adapters
(``hwaware_optuna._chaos``, ``hwaware_hyperopt._chaos``) and are found through
the component registry: this package never imports a framework or an adapter.
"""

from hwaware_plugins.chaos._ledger import Ledger
from hwaware_plugins.chaos._objective import (
    KEY_ATTR,
    PARAM_NAMES,
    ChaosObjective,
    synthetic_loss,
)
from hwaware_plugins.chaos._plan import FAULTS, ChaosRates, fault_for
from hwaware_plugins.chaos._report import TrialResult, summarize
from hwaware_plugins.chaos._run import (
    DRIVER_KIND,
    ChaosSettings,
    RunContext,
    chaos_devices,
    run_chaos,
)
from hwaware_plugins.executors._retry import RetryingExecutor

__all__ = [
    "DRIVER_KIND",
    "FAULTS",
    "KEY_ATTR",
    "PARAM_NAMES",
    "ChaosObjective",
    "ChaosRates",
    "ChaosSettings",
    "Ledger",
    "RetryingExecutor",
    "RunContext",
    "TrialResult",
    "chaos_devices",
    "fault_for",
    "run_chaos",
    "summarize",
    "synthetic_loss",
]
