"""Per-trial timeouts, one for every trial or one per subspace.

A trial timeout setting is either ``None`` (no limit), a number of seconds, or
a mapping from subspace key to seconds (``None`` for no limit), where the key
:data:`OTHER_SUBSPACES` (``"*"``) covers every subspace the mapping does not
name: ``{"model=mlp": 600, "*": 60}`` gives networks ten minutes and everything
else one (keys are ``hwaware:subspace`` values, ``label=option`` per branch).
Both adapters take such a setting
(``HardwareAwareTrials(timeout_per_trial=)``,
``hwaware_optuna.optimize(trial_timeout=)``); these two pure functions are all
they need.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeAlias

from hwaware_plugins.errors import ConfigError

TrialTimeout: TypeAlias = float | Mapping[str, float | None] | None
"""``None``, seconds, or ``{subspace key: seconds or None}`` with ``"*"`` for the rest."""

OTHER_SUBSPACES = "*"
"""The mapping key that stands for every subspace the mapping does not name."""


def _seconds(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value > 0
    )


def check_trial_timeout(value: object, name: str = "trial_timeout") -> TrialTimeout:
    """Return ``value`` if it is a valid trial timeout setting, else raise.

    :raises ConfigError: one line naming ``name`` and, for a mapping, the bad
        entry: a key that is not a string, or seconds that are not a finite
        number > 0 (nor ``None``).
    Cost: O(entries).
    """
    if value is None or _seconds(value):
        return value  # type: ignore[return-value]
    if isinstance(value, Mapping):
        for key, seconds in value.items():
            if not isinstance(key, str):
                raise ConfigError(
                    f"{name}: subspace keys must be strings, got {key!r}; use the keys in "
                    f"the trials' hwaware subspace record, or {OTHER_SUBSPACES!r} for the rest"
                )
            if seconds is not None and not _seconds(seconds):
                raise ConfigError(
                    f"{name}[{key!r}] must be None or a number of seconds > 0, got {seconds!r}"
                )
        return value
    raise ConfigError(
        f"{name} must be None, a number of seconds > 0, or a mapping from subspace key to "
        f"seconds, got {value!r}"
    )


def timeout_for(setting: TrialTimeout, subspace: str | None) -> float | None:
    """The seconds a trial of ``subspace`` may run under ``setting`` (``None``: no limit).

    A number applies to every trial. A mapping gives the subspace's own entry,
    else the :data:`OTHER_SUBSPACES` entry, else no limit; a trial whose
    subspace is not known yet (``None``) gets the :data:`OTHER_SUBSPACES`
    entry. Pure; O(1).
    """
    if setting is None or not isinstance(setting, Mapping):
        return None if setting is None else float(setting)
    if subspace is not None and subspace in setting:
        chosen = setting[subspace]
    else:
        chosen = setting.get(OTHER_SUBSPACES)
    return None if chosen is None else float(chosen)
