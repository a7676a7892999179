"""Running a chaos benchmark: set up devices, pool and ledger, drive a framework, audit."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from hwaware_plugins.chaos._ledger import Ledger
from hwaware_plugins.chaos._objective import ChaosObjective
from hwaware_plugins.chaos._plan import ChaosRates
from hwaware_plugins.chaos._report import RunChecks, TrialResult, summarize
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware import Device
from hwaware_plugins.hookspecs import CHAOS_DRIVER_KIND

FRAMEWORKS: tuple[str, ...] = ("optuna", "hyperopt")
"""Frameworks the chaos benchmark drives."""

DRIVERS: tuple[str, ...] = ("optimize", "executor")
"""How optuna trials run (see :class:`ChaosSettings`)."""

DRIVER_KIND = CHAOS_DRIVER_KIND
"""Component kind of a chaos driver (:data:`hwaware_plugins.hookspecs.CHAOS_DRIVER_KIND`)."""

DEFAULT_TRIAL_TIMEOUT_S = 2.0
"""Per-trial timeout of every path (work is at most 0.2 s; with ``hwaware_optuna.optimize``
the clock starts with the objective, so a fresh worker's warm-up does not count)."""

MIN_COMPLETED_WITH_RETRIES = 0.95
"""With ``max_retries >= 2`` at least this share of the trials must complete."""


def chaos_devices() -> list[Device]:
    """Four declared GPUs of 16, 16, 40 and 80 GiB (one exclusive slot each).

    Nothing uses CUDA: the devices give the pool real slots to lease and the
    out-of-memory re-placement real memory sizes to grow into.
    """
    sizes = (16, 16, 40, 80)
    return [
        Device(
            id=f"chaos/gpu:{n}", kind="gpu", name=f"chaos-{gb}GB", uuid=f"GPU-chaos-{n}",
            memory_total_mb=gb * 1024, memory_free_mb=gb * 1024, host="chaos", index=n,
            speed_source="declared",
        )
        for n, gb in enumerate(sizes)
    ]


@dataclass(frozen=True)
class ChaosSettings:
    """One chaos run. Validated by :meth:`validate` (called by :func:`run_chaos`).

    :param framework: ``"optuna"`` or ``"hyperopt"``.
    :param trials: trials requested.
    :param rates: fault rates per attempt.
    :param max_retries: retries of a crashed, out-of-memory or timed-out trial.
    :param seed: fixes the faults, the work times and the framework's sampler.
    :param trial_timeout: seconds after which a hung trial is killed; default
        :data:`DEFAULT_TRIAL_TIMEOUT_S`.
    :param devices: the devices trials are placed on (default :func:`chaos_devices`).
    :param work_s: seconds of work per attempt, ``(low, high)``.
    :param max_oom_retries: re-placements of an out-of-memory trial by the executor.
    :param driver: how optuna trials run: ``"optimize"`` (``hwaware_optuna.optimize``,
        trials on ``LocalExecutor``, its own retries) or ``"executor"`` (``ask``/``tell``
        with one fresh worker process per attempt); hyperopt has one path.
    """

    framework: str
    trials: int
    rates: ChaosRates = field(default_factory=ChaosRates)
    max_retries: int = 0
    seed: int = 0
    trial_timeout: float | None = None
    devices: Sequence[Device] | None = None
    work_s: tuple[float, float] = (0.05, 0.2)
    max_oom_retries: int = 2
    driver: str = "optimize"

    @property
    def timeout_s(self) -> float:
        """The per-trial timeout in effect (``trial_timeout`` or the default)."""
        return DEFAULT_TRIAL_TIMEOUT_S if self.trial_timeout is None else self.trial_timeout

    def validate(self) -> None:
        """Raise a one-line :class:`ConfigError` naming the first invalid setting."""
        if self.framework not in FRAMEWORKS:
            raise ConfigError(
                f"unknown framework {self.framework!r}; use one of {', '.join(FRAMEWORKS)}"
            )
        for name in ("trials", "max_retries", "seed", "max_oom_retries"):
            value: Any = getattr(self, name)
            least = 1 if name == "trials" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                flag = name.replace("_", "-")
                raise ConfigError(f"{name} (--{flag}) must be an int >= {least}, got {value!r}")
        if self.driver not in DRIVERS:
            raise ConfigError(
                f"unknown driver {self.driver!r} (--driver); use one of {', '.join(DRIVERS)}"
            )
        self.rates.validate()
        t = self.timeout_s
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < float("inf"):
            raise ConfigError(f"trial_timeout (--trial-timeout) must be a number > 0, got {t!r}")
        low, high = self.work_s
        if not 0 <= low <= high < t:
            raise ConfigError(
                f"work time ({low}, {high}) s must satisfy 0 <= low <= high < the trial timeout"
            )


@dataclass
class RunContext:
    """What a framework driver gets: the objective, the executor and the settings."""

    settings: ChaosSettings
    objective: ChaosObjective
    executor: Any
    devices: list[Device]
    slots: int
    pool: Any = None
    run_dir: str = ""


class _LeaseWatch:
    """Polls the pool's active leases and counts slots ever held twice at once."""

    def __init__(
        self, pool: Any, period_s: float = 0.1, on_tick: Callable[[], None] | None = None
    ) -> None:
        self.pool = pool
        self.period_s = period_s
        self.on_tick = on_tick
        self.doubles = 0
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-lease-watch", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.check()
            self._tick()

    def _tick(self) -> None:
        if self.on_tick is not None:
            self.on_tick()

    def check(self) -> None:
        leases = self.pool.active_leases()
        counts = Counter(lease.slot_id for lease in leases)
        self.doubles += sum(1 for n in counts.values() if n > 1)
        self.most = max(self.most, len(leases))

    def __enter__(self) -> _LeaseWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.check()
        self._tick()  # the final count, however the last poll fell


Driver = Callable[[RunContext], list[TrialResult]]


def find_driver(framework: str, driver: str) -> tuple[str, Driver]:
    """The registered chaos driver of ``framework``: ``(its name, the callable)``.

    The component named ``driver`` when the framework has one; else the
    framework's only driver (hyperopt has one path, ``fmin``).

    :raises ConfigError: no adapter registered a driver for ``framework``, or it
        has several and none is named ``driver``.
    """
    from hwaware_plugins._manager import components

    found = [c for c in components(kind=DRIVER_KIND) if c.framework == framework]
    chosen = [c for c in found if c.name == driver] or (found if len(found) == 1 else [])
    if not chosen:
        if not found:
            raise ConfigError(
                f"--framework {framework} needs the hwaware_{framework} adapter, which "
                f"registers its chaos driver: pip install hwaware-{framework}"
            )
        names = ", ".join(sorted(c.name for c in found))
        raise ConfigError(f"no chaos driver {driver!r} for {framework}; known: {names}")
    return chosen[0].name, cast("Driver", chosen[0].factory)


def run_chaos(
    settings: ChaosSettings,
    *,
    keep_dir: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run ``settings.trials`` chaos trials with one framework; return the report.

    Trials run through the framework's hardware-aware path on a private
    device pool (its own name and state folder, so nothing else on the node
    shares its leases) with a :class:`~hwaware_plugins.executors.LocalExecutor`.
    Afterwards the run is audited: every trial's record is read back from the
    framework's storage, the ledger is checked for double leases and for
    processes still alive, the pool for leases still held. See
    :func:`~hwaware_plugins.chaos._report.summarize` for the report's keys;
    it also holds the settings and ``wall_s``.

    :param keep_dir: keep the ledger in this (new or empty) folder instead of
        a temporary one that is removed.
    :param progress: called about ten times a second, from a helper thread,
        with the number of trials that have started (retries of optuna's
        ``optimize`` are new trials, so it can exceed ``settings.trials``).
    :raises ConfigError: invalid settings, or the framework's adapter is not installed.

    Cost: about ``trials * (worker start + work) / slots`` seconds plus one
    ``trial_timeout`` per hang. Not thread-safe (one run per process at a time).
    """
    settings.validate()
    driver_name, driver = find_driver(settings.framework, settings.driver)
    from hwaware_plugins.executors import LocalExecutor
    from hwaware_plugins.executors._worker import wait_for_leaving_workers
    from hwaware_plugins.hardware._pool import DevicePool

    run_dir = keep_dir or tempfile.mkdtemp(prefix="hwaware-chaos-")
    os.makedirs(run_dir, exist_ok=True)
    devices = list(settings.devices) if settings.devices is not None else chaos_devices()
    pool = DevicePool(devices, name=f"chaos-{uuid.uuid4().hex[:12]}",
                      state_dir=os.path.join(run_dir, "pool"))
    objective = ChaosObjective(run_dir=run_dir, rates=settings.rates, seed=settings.seed,
                               work_s=settings.work_s)
    executor = LocalExecutor(pool, timeout=settings.timeout_s, kill_grace_s=1.0,
                             max_oom_retries=settings.max_oom_retries,
                             framework=settings.framework)
    slots = sum(max(1, d.slots) for d in devices)
    started = time.monotonic()
    try:
        ledger = Ledger(run_dir)
        tick = None if progress is None else (lambda: progress(ledger.trials_started()))
        with _LeaseWatch(pool, on_tick=tick) as watch:
            try:
                context = RunContext(settings, objective, executor, devices, slots, pool, run_dir)
                results = driver(context)
            finally:
                executor.shutdown(wait=True, cancel_running=True)
                # optimize returns while its idle workers leave: wait, as interpreter exit does
                wait_for_leaving_workers()
        wall = time.monotonic() - started
        checks = RunChecks(
            double_leases=ledger.double_leases() + watch.doubles,
            orphan_processes=len(set(ledger.live_processes()) | set(executor.running_pids())),
            leases_held_at_end=len(pool.active_leases()),
            extra={"most_leases_at_once": watch.most, "slots": slots},
        )
    finally:
        pool.close()
        if keep_dir is None:
            shutil.rmtree(run_dir, ignore_errors=True)
    report = summarize(
        results, requested=settings.trials, checks=checks,
        min_completed_fraction=MIN_COMPLETED_WITH_RETRIES if settings.max_retries >= 2 else None,
    )
    report = {
        "framework": settings.framework, **report, "wall_s": round(wall, 2),
        "settings": {
            "seed": settings.seed, "max_retries": settings.max_retries,
            "trial_timeout_s": settings.timeout_s, "rates": asdict(settings.rates),
            "work_s": list(settings.work_s), "max_oom_retries": settings.max_oom_retries,
            "devices": [d.id for d in devices],
            "driver": driver_name,
        },
    }
    return report

