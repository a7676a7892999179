"""hwaware-plugins adapter for optuna: hardware-aware sampling, device placement, pruners.

Swap one argument and keep the pipeline::

    sampler = hwaware_optuna.HardwareAwareSampler(devices="node.toml", seed=0)
    study = optuna.create_study(sampler=sampler)

    def objective(trial):
        device = hwaware_optuna.torch_device_for(trial)   # "cpu" or "cuda:<n>"
        ...

- :class:`HardwareAwareSampler`: leases a device per trial, lets a scheduler
  choose the subspace for it, and samples with any optuna sampler inside it;
- :func:`device_for` / :func:`torch_device_for`: the running trial's device;
- :func:`report_peak_memory`: feeds memory-aware packing;
- :class:`SubspacePruner`, :class:`CostAwarePruner`: pruners that know subspaces
  and device classes;
- :func:`optimize`: trials in worker processes pinned to leased device slots of this node
  (on the core's ``LocalExecutor``, one lease per trial);
  :func:`run_node` (``hwaware worker``) joins a shared study from any node.

The components are also registered by name (``hwaware_plugins.load("sampler",
"hwaware", framework="optuna")``; pruners ``"subspace"`` and ``"cost"``).

Names are imported on first use, so that the plugin registry (which imports
``hwaware_optuna._plugin``) does not import optuna.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwaware_plugins._lazy import lazy_exports

if TYPE_CHECKING:
    from hwaware_optuna._attrs import report_peak_memory
    from hwaware_optuna._cost_pruner import CostAwarePruner
    from hwaware_optuna._devices import device_for, torch_device_for
    from hwaware_optuna._optimize import optimize
    from hwaware_optuna._sampler import HardwareAwareSampler
    from hwaware_optuna._subspace_pruner import SubspacePruner
    from hwaware_optuna._worker_node import run_node

_WHERE: dict[str, str] = {
    "report_peak_memory": "_attrs",
    "CostAwarePruner": "_cost_pruner",
    "device_for": "_devices",
    "torch_device_for": "_devices",
    "optimize": "_optimize",
    "HardwareAwareSampler": "_sampler",
    "SubspacePruner": "_subspace_pruner",
    "run_node": "_worker_node",
}

__all__ = [
    "CostAwarePruner",
    "HardwareAwareSampler",
    "SubspacePruner",
    "device_for",
    "optimize",
    "report_peak_memory",
    "run_node",
    "torch_device_for",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
