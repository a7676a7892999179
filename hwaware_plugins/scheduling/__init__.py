"""Schedulers: which subspace should the next trial on a device class sample?

Build one by name (``hwaware_plugins.load("scheduler", "hwaware", seed=0)``) or
use the classes directly. Each is fed a :class:`History` of finished trials.

- :class:`FcfsScheduler` (``fcfs``): uniform, hardware-blind baseline;
- :class:`ShadhoScheduler` (``shadho``): faithful SHADHO reproduction;
- :class:`HwawareScheduler` (``hwaware``): ours.
"""

from hwaware_plugins.scheduling._base import DeviceClassInfo, Scheduler, SubspaceInfo
from hwaware_plugins.scheduling._fcfs import FcfsScheduler
from hwaware_plugins.scheduling._history import TRIAL_STATES, History
from hwaware_plugins.scheduling._hwaware import HwawareScheduler
from hwaware_plugins.scheduling._shadho import ShadhoScheduler
from hwaware_plugins.scheduling._shadho_rules import banding, planck_weights, shadho_order

__all__ = [
    "TRIAL_STATES",
    "DeviceClassInfo",
    "FcfsScheduler",
    "History",
    "HwawareScheduler",
    "Scheduler",
    "ShadhoScheduler",
    "SubspaceInfo",
    "banding",
    "planck_weights",
    "shadho_order",
]
