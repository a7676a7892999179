"""hwaware-plugins adapter for hyperopt: hardware-aware ``Trials`` and ``suggest``.

- :class:`HardwareAwareTrials`: ``fmin(..., trials=HardwareAwareTrials())`` runs
  evaluations in parallel, each in a worker process pinned to a leased device
  slot (on this node, or on a Dask cluster with
  :class:`hwaware_plugins.executors.DaskExecutor`);
- :func:`suggest`: ``fmin(..., algo=suggest)`` chooses the ``hp.choice`` branch
  by complexity and by a hardware-aware scheduler, then lets TPE (or any base
  algorithm) sample inside it;
- :func:`read_space` / :func:`branching`: the pyll graph read as the core's
  search-space tree and its subspaces.

Both are also registered components: ``hwaware_plugins.load("trials",
"hwaware", framework="hyperopt")`` and ``load("algo", "hwaware", framework="hyperopt")``.

Names are imported on first use, so that the plugin registry (which imports
``hwaware_hyperopt._plugin``) does not import hyperopt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwaware_plugins._lazy import lazy_exports

if TYPE_CHECKING:
    from hwaware_hyperopt._branches import Branching, branching
    from hwaware_hyperopt._docs import MISC_KEY
    from hwaware_hyperopt._driver import TrialFailedError
    from hwaware_hyperopt._pyll import SpaceInfo, SwitchInfo, hp_distribution, read_space
    from hwaware_hyperopt._remote import RemoteTraceback
    from hwaware_hyperopt._suggest import suggest
    from hwaware_hyperopt._trials import HardwareAwareTrials

_WHERE: dict[str, str] = {
    "Branching": "_branches",
    "branching": "_branches",
    "MISC_KEY": "_docs",
    "TrialFailedError": "_driver",
    "SpaceInfo": "_pyll",
    "SwitchInfo": "_pyll",
    "hp_distribution": "_pyll",
    "read_space": "_pyll",
    "RemoteTraceback": "_remote",
    "suggest": "_suggest",
    "HardwareAwareTrials": "_trials",
}

__all__ = [
    "MISC_KEY",
    "Branching",
    "HardwareAwareTrials",
    "RemoteTraceback",
    "SpaceInfo",
    "SwitchInfo",
    "TrialFailedError",
    "branching",
    "hp_distribution",
    "read_space",
    "suggest",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
