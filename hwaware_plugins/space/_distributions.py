"""Framework-neutral distributions of a search space.

They are plain frozen records; validation happens in :meth:`validate` (called by
the space builders and the complexity rules), scikit-learn style, so that
constructing one never raises.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hwaware_plugins.errors import SearchSpaceError


@dataclass(frozen=True)
class Float:
    """A real number in ``[low, high]``, uniform or log-uniform; ``step`` quantises it."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def validate(self, name: str = "?") -> None:
        """Raise :class:`SearchSpaceError` if the bounds are not a usable interval."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise SearchSpaceError(f"parameter {name!r}: bounds must be finite, got {self}")
        if self.low > self.high:
            raise SearchSpaceError(
                f"parameter {name!r}: low={self.low} is greater than high={self.high}"
            )
        if self.log and self.low <= 0:
            raise SearchSpaceError(f"parameter {name!r}: a log scale needs low > 0, got {self.low}")
        if self.step is not None and self.step <= 0:
            raise SearchSpaceError(f"parameter {name!r}: step must be > 0, got {self.step}")


@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]`` (inclusive), uniform or log-uniform, with ``step``."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def validate(self, name: str = "?") -> None:
        """Raise :class:`SearchSpaceError` if the bounds are not a usable range."""
        if self.low > self.high:
            raise SearchSpaceError(
                f"parameter {name!r}: low={self.low} is greater than high={self.high}"
            )
        if self.log and self.low <= 0:
            raise SearchSpaceError(f"parameter {name!r}: a log scale needs low > 0, got {self.low}")
        if self.step <= 0:
            raise SearchSpaceError(f"parameter {name!r}: step must be > 0, got {self.step}")

    @property
    def n_values(self) -> int:
        """How many integers the range holds."""
        return (self.high - self.low) // self.step + 1


@dataclass(frozen=True)
class Normal:
    """A normal (or log-normal) distribution with mean ``mu`` and deviation ``sigma``."""

    mu: float
    sigma: float
    log: bool = False
    step: float | None = None

    def validate(self, name: str = "?") -> None:
        """Raise :class:`SearchSpaceError` unless ``sigma`` is positive and finite."""
        if not (math.isfinite(self.mu) and math.isfinite(self.sigma)) or self.sigma <= 0:
            raise SearchSpaceError(
                f"parameter {name!r}: a normal needs finite mu and sigma > 0, got {self}"
            )


@dataclass(frozen=True)
class Categorical:
    """One of a finite set of choices (that do not change the set of other parameters)."""

    choices: tuple[Any, ...]

    def __init__(self, choices: Sequence[Any]) -> None:
        object.__setattr__(self, "choices", tuple(choices))

    def validate(self, name: str = "?") -> None:
        """Raise :class:`SearchSpaceError` if there is nothing to choose from."""
        if not self.choices:
            raise SearchSpaceError(f"parameter {name!r}: a categorical needs at least one choice")


@dataclass(frozen=True)
class Constant:
    """A fixed value (complexity 1 under the ``shadho`` rule, 0 under ``hwaware``)."""

    value: Any

    def validate(self, name: str = "?") -> None:
        """A constant is always valid."""


Distribution = Float | Int | Normal | Categorical | Constant
"""The distributions the core knows; any other object is asked of the complexity hook."""
