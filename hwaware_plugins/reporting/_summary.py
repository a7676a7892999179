"""Pure aggregations of :class:`TrialRecord` rows: per subspace, per device class, failures."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from hwaware_plugins.reporting._records import TrialRecord


@dataclass(frozen=True)
class SubspaceSummary:
    """One subspace's trials: counts, best loss, devices used and device time (seconds)."""

    subspace: str
    trials: int
    complete: int
    failed: int
    best_loss: float | None
    devices: tuple[str, ...]
    time_s: float


def subspace_order(records: Sequence[TrialRecord]) -> list[str]:
    """Subspace names in a stable order (sorted), used for colours and legends."""
    return sorted({r.subspace for r in records})


def summarize_subspaces(records: Sequence[TrialRecord]) -> list[SubspaceSummary]:
    """One :class:`SubspaceSummary` per subspace, best loss first (no loss last). O(trials)."""
    groups: dict[str, list[TrialRecord]] = defaultdict(list)
    for record in records:
        groups[record.subspace].append(record)
    rows = []
    for name, group in groups.items():
        losses = [r.loss for r in group if r.loss is not None]
        rows.append(
            SubspaceSummary(
                subspace=name,
                trials=len(group),
                complete=sum(r.state == "complete" for r in group),
                failed=sum(r.state == "fail" for r in group),
                best_loss=min(losses) if losses else None,
                devices=tuple(sorted({r.device_id for r in group})),
                time_s=sum(r.duration_s for r in group),
            )
        )
    return sorted(rows, key=lambda s: (s.best_loss is None, s.best_loss or 0.0, s.subspace))


def cross_tab(records: Sequence[TrialRecord], *, measure: str) -> dict[str, dict[str, float]]:
    """``{device_class: {subspace: value}}`` with ``measure`` ``"trials"`` or ``"time"`` (s).

    :raises ValueError: another measure.
    """
    if measure not in ("trials", "time"):
        raise ValueError(f"measure must be 'trials' or 'time', got {measure!r}")
    table: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in records:
        table[r.device_class][r.subspace] += 1.0 if measure == "trials" else r.duration_s
    return {k: dict(v) for k, v in sorted(table.items())}


def failures_by_kind(records: Sequence[TrialRecord]) -> list[tuple[str, int, list[str]]]:
    """``(kind, count, device classes)`` for failed and pruned trials, most frequent first."""
    counts: Counter[str] = Counter()
    where: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if r.fail_kind is not None:
            counts[r.fail_kind] += 1
            where[r.fail_kind].add(r.device_class)
    return [(kind, n, sorted(where[kind])) for kind, n in counts.most_common()]


def best_so_far(records: Sequence[TrialRecord]) -> list[tuple[float, float]]:
    """``(end time s, best loss so far)`` at each completed trial that improved it, by time."""
    done = sorted((r.end_s, r.loss) for r in records if r.loss is not None and r.end_s is not None)
    steps: list[tuple[float, float]] = []
    for end, loss in done:
        if not steps or loss < steps[-1][1]:
            steps.append((end, loss))
    return steps
