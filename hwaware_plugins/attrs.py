"""The one table of ``hwaware:*`` trial attribute keys.

Adapters write these keys on the trials of a study (Optuna user attributes);
the reporting, the chaos audit and any other reader read them back. Every module
that names a key imports it from here, so writer and reader cannot drift apart.
Plain string constants: importing this module costs nothing and pulls in no
framework.

Written when a trial is placed on a device:

- :data:`TRIAL`: the trial's own number; marks the other placement keys as this
  trial's and not copies (e.g. by ``RetryFailedTrialCallback``);
- :data:`DEVICE_ID`, :data:`DEVICE_CLASS`, :data:`DEVICE_KIND`, :data:`UUID`,
  :data:`HOST`, :data:`SLOT_ID`: where it runs;
- :data:`SUBSPACE`: the subspace key it was placed in (:data:`FREE` while
  trials explore the whole space).

Written when it ends or by the objective:

- :data:`RUNTIME_S`: seconds the lease was held (not written when the process
  running the trial died: a crash, a timeout kill, an interrupt);
- :data:`PEAK_MEMORY_MB`: the objective's peak device memory (optional);
- :data:`FAIL_REASON`: why a failed trial failed (``"<kind>: <what happened>"``
  or an exception name);
- :data:`STATE`, :data:`ATTEMPTS`: the executor's outcome state and every
  placement as ``[device_id, state, reason]``.

Written by the multi-process runtime (``optimize``, ``hwaware worker``):

- :data:`NODE`, :data:`WORKER_PID`, :data:`WORKER_STARTED`: who ran it;
- :data:`RETRY`: the retry number (the trial it repeats is Optuna's own
  ``failed_trial`` system attribute);
- :data:`MEMORY_NEED_MB`, :data:`OOM_ACTION`: out-of-memory re-placement.

Written by the chaos benchmark: :data:`CHAOS_TRIAL`, the trial's key across retries,
and :data:`RETRY_OF`, the trial a retry repeats.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "hwaware:"
"""Every key starts with it."""

TRIAL: Final = PREFIX + "trial"
DEVICE_ID: Final = PREFIX + "device_id"
DEVICE_CLASS: Final = PREFIX + "device_class"
DEVICE_KIND: Final = PREFIX + "device_kind"
UUID: Final = PREFIX + "uuid"
HOST: Final = PREFIX + "host"
SLOT_ID: Final = PREFIX + "slot_id"
SUBSPACE: Final = PREFIX + "subspace"
RUNTIME_S: Final = PREFIX + "runtime_s"
PEAK_MEMORY_MB: Final = PREFIX + "peak_memory_mb"
FAIL_REASON: Final = PREFIX + "fail_reason"
STATE: Final = PREFIX + "state"
ATTEMPTS: Final = PREFIX + "attempts"
NODE: Final = PREFIX + "node"
WORKER_PID: Final = PREFIX + "worker_pid"
WORKER_STARTED: Final = PREFIX + "worker_started"
RETRY: Final = PREFIX + "retry"
RETRY_OF: Final = PREFIX + "retry_of"
MEMORY_NEED_MB: Final = PREFIX + "memory_need_mb"
OOM_ACTION: Final = PREFIX + "oom_action"
OBJECTIVE_STARTED: Final = PREFIX + "objective_started"
STEP_S: Final = PREFIX + "step_s"
CHAOS_TRIAL: Final = PREFIX + "chaos_trial"

FREE: Final = "*"
"""The :data:`SUBSPACE` of a trial that explored the whole space (nothing learned yet)."""

ALL_KEYS: Final[tuple[str, ...]] = (
    TRIAL, DEVICE_ID, DEVICE_CLASS, DEVICE_KIND, UUID, HOST, SLOT_ID, SUBSPACE, RUNTIME_S,
    PEAK_MEMORY_MB, FAIL_REASON, STATE, ATTEMPTS, NODE, WORKER_PID, WORKER_STARTED, RETRY,
    RETRY_OF, MEMORY_NEED_MB, OOM_ACTION, OBJECTIVE_STARTED, STEP_S, CHAOS_TRIAL,
)  # fmt: skip
"""Every key of the table, for documentation and checks."""
