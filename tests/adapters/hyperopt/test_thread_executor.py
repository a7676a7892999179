"""``HardwareAwareTrials(executor="thread")``: objectives that keep state in the coordinator."""

from __future__ import annotations

from typing import Any

import numpy as np
from hwaware_hyperopt import MISC_KEY, HardwareAwareTrials
from hyperopt import STATUS_OK, fmin, hp

from hwaware_plugins.executors import current_device

from .conftest import cpus


class _Estimator:
    """Keeps the best model on itself, as hyperopt-sklearn's ``HyperoptEstimator`` does."""

    def __init__(self) -> None:
        self.best: tuple[float, Any] | None = None
        self.devices: set[str] = set()

    def objective(self, point: dict[str, float]) -> dict[str, Any]:
        loss = (point["x"] - 0.3) ** 2
        running = current_device()
        assert running is not None and running.device_id is not None
        self.devices.add(running.device_id)
        if self.best is None or loss < self.best[0]:
            self.best = (loss, {"x": point["x"]})  # a side effect a worker process would lose
        return {"loss": loss, "status": STATUS_OK}


def test_state_the_objective_keeps_in_the_coordinator_survives() -> None:
    estimator = _Estimator()
    trials = HardwareAwareTrials(devices=cpus(3), executor="thread")
    try:
        fmin(estimator.objective, {"x": hp.uniform("x", -1, 1)}, max_evals=6, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(0))
    finally:
        trials.close()
    assert estimator.best is not None and estimator.best[0] == min(trials.losses())
    assert estimator.devices == {t["misc"][MISC_KEY]["device_id"] for t in trials.trials}
    assert len(trials.trials) == 6
