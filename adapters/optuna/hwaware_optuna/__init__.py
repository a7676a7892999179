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
  and device classes.

The components are also registered by name (``hwaware_plugins.load("sampler",
"hwaware", framework="optuna")``; pruners ``"subspace"`` and ``"cost"``).
"""

from hwaware_optuna._attrs import report_peak_memory
from hwaware_optuna._cost_pruner import CostAwarePruner
from hwaware_optuna._devices import device_for, torch_device_for
from hwaware_optuna._sampler import HardwareAwareSampler
from hwaware_optuna._subspace_pruner import SubspacePruner

__all__ = [
    "CostAwarePruner",
    "HardwareAwareSampler",
    "SubspacePruner",
    "device_for",
    "report_peak_memory",
    "torch_device_for",
]
