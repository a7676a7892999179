"""Trial timeouts, one for every trial or per subspace, with ``"*"`` for the rest."""

from __future__ import annotations

import pytest

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.executors import OTHER_SUBSPACES, check_trial_timeout, timeout_for


def test_a_number_applies_to_every_trial_and_none_means_no_limit() -> None:
    assert timeout_for(30, "model=mlp") == 30.0
    assert timeout_for(30, None) == 30.0
    assert timeout_for(None, "model=mlp") is None


def test_a_mapping_gives_the_subspace_its_own_limit_and_the_rest_the_star_entry() -> None:
    setting = {"model=mlp": 600, "model=svm": None, OTHER_SUBSPACES: 60}
    assert timeout_for(setting, "model=mlp") == 600.0
    assert timeout_for(setting, "model=svm") is None  # named, explicitly without a limit
    assert timeout_for(setting, "model=knn") == 60.0
    assert timeout_for(setting, None) == 60.0  # subspace not known yet
    assert timeout_for({"model=mlp": 600}, "model=knn") is None  # no "*": no limit


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "trial_timeout must be None, a number of seconds > 0"),
        (True, "trial_timeout must be None, a number"),
        ("1h", "trial_timeout must be None, a number"),
        (float("inf"), "trial_timeout must be None, a number"),
        ({"mlp": -1}, r"trial_timeout\['mlp'\] must be None or a number of seconds > 0, got -1"),
        ({1: 5}, "subspace keys must be strings, got 1"),
    ],
)
def test_bad_settings_are_one_line_errors(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_trial_timeout(value)


def test_good_settings_are_returned_as_given() -> None:
    setting = {"mlp": 5, "*": None}
    assert check_trial_timeout(setting) is setting
    assert check_trial_timeout(2.5) == 2.5 and check_trial_timeout(None) is None
