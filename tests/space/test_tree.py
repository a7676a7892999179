"""The space tree: building from dicts, validation errors, flattening."""

from __future__ import annotations

from typing import Any

import pytest

from hwaware_plugins import SearchSpaceError
from hwaware_plugins.space import (
    Categorical,
    Choice,
    Constant,
    Float,
    Group,
    Int,
    Optional,
    Param,
    flatten,
    from_dict,
    validate_space,
)


def test_from_dict_builds_params_choices_categoricals_and_constants() -> None:
    tree = from_dict(
        {
            "lr": Float(1e-4, 1e-1, log=True),
            "act": ["relu", "tanh"],
            "epochs": 10,
            "opt": {"sgd": {"momentum": Float(0, 0.99)}, "adam": None},
            "dropout": Optional("dropout", Param("p", Float(0, 0.5))),
        }
    )
    assert tree.children[0] == Param("lr", Float(1e-4, 1e-1, log=True))
    assert tree.children[1] == Param("act", Categorical(["relu", "tanh"]))
    assert tree.children[2] == Param("epochs", Constant(10))
    choice = tree.children[3]
    assert isinstance(choice, Choice)
    assert choice.name == "opt"
    assert list(choice.options) == ["sgd", "adam"]
    assert choice.options["adam"] is None
    sgd = choice.options["sgd"]
    assert isinstance(sgd, Group)
    assert sgd.children == (Param("momentum", Float(0, 0.99)),)
    assert tree.children[4] == Optional("dropout", Param("p", Float(0, 0.5)))
    assert validate_space(tree) == {"lr", "act", "epochs", "opt", "momentum", "dropout", "p"}


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (from_dict({"model": {}}), "choice 'model' has no options"),
        (from_dict({"lr": Float(1.0, 0.1)}), "'lr': low=1.0 is greater than high=0.1"),
        (from_dict({"n": Int(5, 1)}), "'n': low=5 is greater than high=1"),
        (from_dict({"lr": Float(0, 1, log=True)}), "'lr': a log scale needs low > 0"),
        (from_dict({"c": []}), "'c': a categorical needs at least one choice"),
        (
            from_dict({"C": Float(0, 1), "model": {"svm": {"C": Int(1, 3)}}}),
            "parameter 'C' appears twice in one subspace",
        ),
        (
            from_dict({"kernel": {"rbf": {"kernel": Float(0, 1)}}}),
            "parameter 'kernel' appears twice",
        ),
        (Group((Param("x", Float(0, 1)), Optional("x", Param("y", Int(0, 1))))), "'x' appears"),
        (Group(({"x": 1},)), "is not a search-space node"),  # type: ignore[arg-type]
        (Group({"x": Float(0, 1)}), "use from_dict"),  # type: ignore[arg-type]
        (Param("", Float(0, 1)), "non-empty string name"),
        (Choice("", {"a": None}), "non-empty string name"),
    ],
)
def test_invalid_spaces_raise_one_line_errors(space: Any, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message) as info:
        validate_space(space)
    assert "\n" not in str(info.value)


def test_building_never_validates() -> None:
    tree = from_dict({"lr": Float(1.0, 0.1)})  # no error until use
    assert isinstance(tree, Group)


def test_same_name_in_exclusive_options_is_allowed() -> None:
    tree = from_dict({"model": {"svm": {"C": Float(0, 1)}, "lr": {"C": Float(0, 10)}}})
    assert validate_space(tree) == {"model", "C"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kernel": Param("gamma", Float(0, 1))}, "named 'gamma'"),
        ({"model": {"svm": 3}}, "option 'svm' must be a dict, a node or None, got int"),
    ],
)
def test_from_dict_rejects_inconsistent_entries(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        from_dict(spec)


def test_from_dict_rejects_a_non_dict() -> None:
    with pytest.raises(SearchSpaceError, match="must be a dict, got list"):
        from_dict([1, 2])  # type: ignore[arg-type]


def test_flatten_keeps_branches_as_categoricals() -> None:
    tree = from_dict(
        {
            "model": {"svm": {"C": Float(0, 1)}, "lr": {"C": Float(0, 10), "l1": [0.0, 1.0]}},
            "scale": Optional("scale", Param("s", Int(1, 3))),
        }
    )
    assert flatten(tree) == {
        "model": Categorical(("svm", "lr")),
        "C": Float(0, 1),  # first definition wins
        "l1": Categorical((0.0, 1.0)),
        "scale": Categorical(("on", "off")),
        "s": Int(1, 3),
    }
