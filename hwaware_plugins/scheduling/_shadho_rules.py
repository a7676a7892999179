"""SHADHO's ordering and assignment rules as pure functions.

- :func:`shadho_order`: rank = position in the complexity-descending order
  times position in the priority-descending order, sorted ascending;
- :func:`banding`: contiguous blocks of the longer list go to successive
  elements of the shorter one, each block also shared with a neighbour;
- :func:`planck_weights`: truncated Planck weights ``p_k ~ exp(-rate * k)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _positions_descending(values: Sequence[float]) -> list[int]:
    """1-based position of each value in the descending order (ties: earlier index first)."""
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    positions = [0] * len(values)
    for pos, index in enumerate(order, start=1):
        positions[index] = pos
    return positions


def shadho_order(complexities: Sequence[float], priorities: Sequence[float]) -> list[int]:
    """Indices of the subspaces, best rank first.

    rank_i = (1-based position of i by complexity, descending) x (1-based
    position of i by priority, descending); sorted ascending, ties by index.
    Cost: O(n log n).
    """
    if len(complexities) != len(priorities):
        raise ValueError("complexities and priorities must have the same length")
    by_c = _positions_descending(complexities)
    by_p = _positions_descending(priorities)
    return sorted(range(len(complexities)), key=lambda i: (by_c[i] * by_p[i], i))


def banding(n_subspaces: int, n_classes: int) -> list[list[int]]:
    """Which ranked subspaces (by position) each class serves, classes fastest first.

    With L the longer and S the shorter of the two lists and x = |L|/|S|,
    element i of L goes with element j = floor(i / x) of S and with j's
    neighbour (j + 1 in the first half of S, j - 1 in the second half).
    Returns one sorted list of subspace positions per class. Cost: O(L).
    """
    if n_subspaces < 1 or n_classes < 1:
        raise ValueError("banding needs at least one subspace and one class")
    if n_classes == 1:
        return [list(range(n_subspaces))]
    assigned: list[set[int]] = [set() for _ in range(n_classes)]
    subspaces_longer = n_subspaces >= n_classes
    n_long, n_short = (n_subspaces, n_classes) if subspaces_longer else (n_classes, n_subspaces)
    x = n_long / n_short
    for i in range(n_long):
        j = min(int(i / x), n_short - 1)
        partners = [j]
        if n_short > 1:
            partners.append(j + 1 if j < n_short / 2 and j + 1 < n_short else j - 1)
        for p in partners:
            if subspaces_longer:
                assigned[p].add(i)
            else:
                assigned[i].add(p)
    return [sorted(a) for a in assigned]


def planck_weights(n: int, rate: float = 0.5) -> list[float]:
    """Normalised truncated Planck weights ``p_k = exp(-rate k) / sum_j exp(-rate j)``, k < n."""
    if n < 1:
        raise ValueError("planck_weights needs n >= 1")
    raw = [math.exp(-rate * k) for k in range(n)]
    total = sum(raw)
    return [w / total for w in raw]
