"""The worker-side sampler of ``optimize``/``hwaware worker``: the slot is already leased.

A worker process of the executor runs on a slot the coordinator's executor
leased for the trial; :class:`PlacedSampler` is a
:class:`~hwaware_optuna.HardwareAwareSampler` that takes no lease of its own:
it places every trial on that slot (:class:`HeldSlot`), so the scheduler picks
the subspace for the slot's device class and ``device_for(trial)`` and the
``hwaware:*`` placement attributes (the real ``hwaware:slot_id`` included) are
right, with one lease per trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from optuna.samplers import TPESampler

from hwaware_optuna._sampler import HardwareAwareSampler

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial

    from hwaware_optuna._runtime import SamplerRuntime
    from hwaware_plugins.hardware import Device
    from hwaware_plugins.hardware._lease import Lease


@dataclass(frozen=True)
class HeldSlot:
    """The slot the executor leased for this process; releasing it is the executor's job."""

    device: Device
    slot_id: str

    def release(self) -> None:
        """Nothing to do: the executor releases its lease when the task ends."""


class PlacedSampler(HardwareAwareSampler):
    """A ``HardwareAwareSampler`` placing every trial on the slot it was built for.

    With a ``seed`` and no ``base_sampler``, each trial's default TPE sampler
    is seeded with ``seed + trial.number``, so workers (fresh or reused) do not
    draw the same random start-up points. Cost per trial: the base class's,
    minus the lease.

    :param slot: the leased slot (device and slot id) of this worker process.
    :param settings: the study's ``HardwareAwareSampler`` keyword arguments.
    """

    def __init__(self, slot: HeldSlot, **settings: Any) -> None:
        super().__init__(devices=[slot.device], skip_foreign_processes=False, **settings)
        self.slot = slot

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Reseed the default base sampler for this trial, then place it on the slot."""
        if self.base_sampler is None and self.seed is not None:
            self._base = TPESampler(seed=self.seed + trial.number)
        super().before_trial(study, trial)

    def _acquire(
        self, runtime: SamplerRuntime, *, memory_mb: float | None, timeout: float | None,
        label: str,
    ) -> Lease:
        return cast("Lease", self.slot)
