"""The Optuna study of ``hwaware demo``, run for the core through the ``hwaware_demo_study`` hook.

The core's ``demo`` command asks the plugins for its study, then prints the
summary, writes the report and runs the framework-neutral simulation itself.
Optuna and scikit-learn are imported when the study runs, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwaware_plugins._progress import progress_bar
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hookspecs import DemoStudy

STUDY_NAME = "hwaware-demo"
"""The study's name in the journal file."""

JOURNAL = "journal.log"
"""The journal file under the demo's ``--out`` folder."""


def _require_optuna() -> Any:
    try:
        import optuna
        import sklearn  # noqa: F401
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"hwaware demo needs {exc.name}: pip install hwaware-optuna scikit-learn"
        ) from None
    return optuna


def run_study(out: Path, trials: int, *, quiet: bool) -> Any:
    """Run the demo study in ``out/journal.log`` (replacing an earlier demo study)."""
    optuna = _require_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from hwaware_optuna import HardwareAwareSampler
    from hwaware_plugins.cli._demo_cash import BRANCH_PARAMS, DigitsCash, family_of
    from hwaware_plugins.hardware import resolve_devices

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    devices = resolve_devices(None)
    n_jobs = max(1, sum(d.slots for d in devices if d.kind == "cpu"))
    storage = JournalStorage(JournalFileBackend(str(out / JOURNAL)))
    if STUDY_NAME in optuna.study.get_all_study_names(storage):
        optuna.delete_study(study_name=STUDY_NAME, storage=storage)
    sampler = HardwareAwareSampler(
        seed=0,
        devices=devices,
        branch_params=list(BRANCH_PARAMS),
        family_of=family_of,
        pool_name=STUDY_NAME,
        state_dir=out / ".leases",
    )
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, sampler=sampler)
    where = ", ".join(f"{d.id} ({d.slots} slot{'s' * (d.slots > 1)})" for d in devices)
    print(f"study {STUDY_NAME!r}: {trials} trials of digits CASH on {where}, n_jobs={n_jobs}")
    with progress_bar(trials, label="study", quiet=quiet) as bar:

        def tick(study: Any, trial: Any) -> None:
            best = min((t.value for t in study.trials if t.value is not None), default=None)
            bar.update(note="" if best is None else f"best loss {best:.4f}")

        study.optimize(
            DigitsCash(seed=0), n_trials=trials, n_jobs=n_jobs, callbacks=[tick],
            catch=(Exception,),
        )  # fmt: skip
    return study


def demo_study(out: Path, trials: int, *, quiet: bool) -> DemoStudy:
    """Run the study (see :func:`run_study`) and say how to render its report again.

    Cost: ``trials`` fits of small scikit-learn models on the digits data, in
    parallel over this machine's CPU slots (a few seconds to a minute).
    """
    study = run_study(out, trials, quiet=quiet)
    command = f"hwaware report --storage {out / JOURNAL} --study {STUDY_NAME}"
    return DemoStudy(study=study, report_command=command)
