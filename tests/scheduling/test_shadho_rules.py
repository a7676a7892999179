"""SHADHO's ranking, banding and Planck weights, with worked examples."""

from __future__ import annotations

import math

import pytest

from hwaware_plugins.scheduling import banding, planck_weights, shadho_order


def test_order_is_the_product_of_positions() -> None:
    # complexity positions (desc): a=1, b=3, c=2; priority positions: a=3, b=1, c=2
    # products: a=3, b=3, c=4 -> a, b (tie by index), c
    assert shadho_order([9.0, 1.0, 5.0], [0.1, 0.9, 0.5]) == [0, 1, 2]
    # equal priorities rank by index (a=1, b=2, c=3); complexity: b=1, c=2, a=3
    # products a=3, b=2, c=6 -> b, a, c
    assert shadho_order([1.0, 3.0, 2.0], [0.0, 0.0, 0.0]) == [1, 0, 2]


def test_order_worked_example_four() -> None:
    # complexity desc: d(1) a(2) c(3) b(4); priority desc: b(1) c(2) a(3) d(4)
    # products: a=6, b=4, c=6, d=4 -> b, d, a, c
    assert shadho_order([5.0, 1.0, 2.0, 8.0], [0.3, 0.9, 0.5, 0.1]) == [1, 3, 0, 2]


def test_banding_more_subspaces_than_classes() -> None:
    # x = 8/3: positions 0-2 -> class 0 (+ neighbour 1), 3-5 -> class 1 (+ 2), 6-7 -> class 2 (+ 1)
    assert banding(8, 3) == [[0, 1, 2], list(range(8)), [3, 4, 5, 6, 7]]


def test_banding_more_classes_than_subspaces() -> None:
    # x = 4/2: classes 0,1 -> subspace 0 (+ neighbour 1); classes 2,3 -> subspace 1 (+ 0)
    assert banding(2, 4) == [[0, 1], [0, 1], [0, 1], [0, 1]]
    assert banding(3, 6)[0] == [0, 1] and banding(3, 6)[5] == [1, 2]


def test_banding_single_class_gets_everything() -> None:
    assert banding(5, 1) == [[0, 1, 2, 3, 4]]
    assert banding(1, 3) == [[0], [0], [0]]


def test_every_subspace_is_served() -> None:
    for n_s in range(1, 12):
        for n_c in range(1, 8):
            served = set().union(*map(set, banding(n_s, n_c)))
            assert served == set(range(n_s))


def test_planck_weights_worked_example() -> None:
    w = planck_weights(3)
    z = 1 + math.exp(-0.5) + math.exp(-1.0)
    assert w == pytest.approx([1 / z, math.exp(-0.5) / z, math.exp(-1.0) / z])
    assert w[0] == pytest.approx(0.5065, abs=1e-4)
    assert planck_weights(1) == [1.0]
