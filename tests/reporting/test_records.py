"""records_from_trials: reading Optuna-style trials without importing optuna."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from hwaware_plugins.reporting import FAIL_REASON, records_from_trials
from hwaware_plugins.reporting._records import FREE_LABEL, UNPLACED

T0 = datetime(2024, 1, 1, 12, 0, 0)


def _trial(
    number: int,
    state: str,
    *,
    start: float | None = 0.0,
    end: float | None = 1.0,
    values: list[float] | None = None,
    attrs: dict[str, Any] | None = None,
) -> SimpleNamespace:
    placed: dict[str, Any] = {
        "hwaware:trial": number,
        "hwaware:device_id": "gpu:0",
        "hwaware:device_class": "A100",
        "hwaware:subspace": "model=svm",
    }
    placed.update(attrs or {})
    return SimpleNamespace(
        number=number,
        state=SimpleNamespace(name=state),
        values=values,
        user_attrs=placed,
        datetime_start=None if start is None else T0 + timedelta(seconds=start),
        datetime_complete=None if end is None else T0 + timedelta(seconds=end),
    )


def test_times_are_relative_to_the_first_start_and_sorted_by_number() -> None:
    trials = [_trial(1, "COMPLETE", start=5, end=7, values=[0.2]),
              _trial(0, "COMPLETE", start=2, end=4, values=[0.3])]  # fmt: skip
    records = records_from_trials(trials)
    assert [r.number for r in records] == [0, 1]
    assert (records[0].start_s, records[0].end_s) == (0.0, 2.0)
    assert (records[1].start_s, records[1].end_s) == (3.0, 5.0)
    assert records[0].loss == 0.3


def test_lease_runtime_excludes_time_spent_waiting_for_a_device() -> None:
    (record,) = records_from_trials(
        [_trial(0, "COMPLETE", start=0, end=10, values=[1.0], attrs={"hwaware:runtime_s": 4.0})]
    )
    assert (record.start_s, record.end_s, record.duration_s) == (6.0, 10.0, 4.0)


def test_maximised_objective_becomes_a_loss() -> None:
    (record,) = records_from_trials([_trial(0, "COMPLETE", values=[0.9])], maximize=True)
    assert record.loss == -0.9


def test_failures_carry_their_kind() -> None:
    trials = [
        _trial(0, "FAIL", attrs={FAIL_REASON: "oom"}),
        _trial(1, "FAIL"),
        _trial(2, "PRUNED"),
        _trial(3, "RUNNING", end=None),
    ]
    kinds = [r.fail_kind for r in records_from_trials(trials)]
    assert kinds == ["oom", "error (no reason recorded)", "pruned", None]


def test_unplaced_and_copied_attributes_are_not_trusted() -> None:
    copied = _trial(5, "COMPLETE", values=[0.1], attrs={"hwaware:trial": 2})
    bare = SimpleNamespace(**{**vars(_trial(6, "COMPLETE", values=[0.1])), "user_attrs": {}})
    free = _trial(7, "COMPLETE", values=[0.1], attrs={"hwaware:subspace": "*"})
    records = records_from_trials([copied, bare, free])
    assert [(r.subspace, r.device_id) for r in records[:2]] == [(UNPLACED, UNPLACED)] * 2
    assert records[2].subspace == FREE_LABEL


def test_non_finite_values_have_no_loss() -> None:
    (record,) = records_from_trials([_trial(0, "COMPLETE", values=[float("nan")])])
    assert record.loss is None
