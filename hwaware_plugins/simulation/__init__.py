"""A discrete-event heterogeneous-cluster simulator replaying measured trials.

- :func:`load_table` reads a trial table CSV (:class:`TrialTable`);
- :func:`load_devices` / :func:`build_slots` turn a declared-device file into
  worker slots (scaled to a worker count);
- :func:`simulate` runs one scheduler on a virtual clock (:class:`RunResult`);
- :func:`run_benchmark` compares schedulers over seeds (``hwaware bench scheduler``):
  time to quality targets (:func:`target_losses`), regret (:func:`regret_area`);
- :func:`verdicts` applies the acceptance rule (hwaware vs each baseline, the
  oracle as the limit).
"""

from hwaware_plugins.simulation._benchmark import (
    BASELINES,
    DEFAULT_SCHEDULERS,
    auto_budget_hours,
    run_benchmark,
)
from hwaware_plugins.simulation._cluster import (
    build_slots,
    class_infos,
    load_devices,
    scaled_slot_counts,
)
from hwaware_plugins.simulation._engine import RunResult, simulate
from hwaware_plugins.simulation._metrics import (
    DEFAULT_TARGETS,
    best_loss,
    best_loss_curve,
    models_per_hour,
    regret_area,
    target_losses,
    time_to_target,
    time_to_target_floor,
)
from hwaware_plugins.simulation._table import (
    SubspaceTrials,
    TrialTable,
    infer_distributions,
    load_table,
)
from hwaware_plugins.simulation._verdict import verdicts

__all__ = [
    "BASELINES",
    "DEFAULT_SCHEDULERS",
    "DEFAULT_TARGETS",
    "RunResult",
    "SubspaceTrials",
    "TrialTable",
    "auto_budget_hours",
    "best_loss",
    "best_loss_curve",
    "build_slots",
    "class_infos",
    "infer_distributions",
    "load_devices",
    "load_table",
    "models_per_hour",
    "regret_area",
    "run_benchmark",
    "scaled_slot_counts",
    "simulate",
    "target_losses",
    "time_to_target",
    "time_to_target_floor",
    "verdicts",
]
