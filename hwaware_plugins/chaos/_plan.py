"""Which fault an attempt of a chaos trial injects: a pure, seeded decision.

Every attempt of every trial draws once, independently, from a hash of
``(seed, trial key, attempt number)``, so the same seed injects the same
faults whatever the order in which trials run, and a retried trial draws
afresh for its new attempt.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from hwaware_plugins.errors import ConfigError

FAULTS: tuple[str, ...] = ("crash", "oom", "timeout")
"""The faults a chaos objective injects, in the order their rates are stacked."""


@dataclass(frozen=True)
class ChaosRates:
    """Probability per attempt of each injected fault.

    :param crash: the worker kills itself (``os._exit`` or SIGKILL).
    :param oom: the objective raises ``RuntimeError("CUDA out of memory ...")``.
    :param timeout: the objective hangs until the per-trial timeout kills it.
    """

    crash: float = 0.0
    oom: float = 0.0
    timeout: float = 0.0

    def validate(self) -> None:
        """Raise :class:`ConfigError` unless every rate is in [0, 1] and they sum to <= 1."""
        for name in FAULTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or not 0 <= value <= 1:
                raise ConfigError(
                    f"{name} rate (--{name}-rate) must be a number in [0, 1], got {value!r}"
                )
        if self.crash + self.oom + self.timeout > 1:
            raise ConfigError(
                f"crash, oom and timeout rates sum to {self.crash + self.oom + self.timeout:g}; "
                "they must sum to at most 1"
            )


def uniform(seed: int, key: str, attempt: int, salt: str = "fault") -> float:
    """A number in [0, 1) fixed by its arguments (blake2b of them). Cost: one small hash."""
    text = f"{seed}\x00{key}\x00{attempt}\x00{salt}".encode()
    digest = hashlib.blake2b(text, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def fault_for(rates: ChaosRates, seed: int, key: str, attempt: int) -> str | None:
    """The fault attempt ``attempt`` (0-based) of trial ``key`` injects, or ``None``.

    Pure and deterministic; each fault happens with its rate's probability.
    """
    draw = uniform(seed, key, attempt)
    edge = 0.0
    for name in FAULTS:
        edge += float(getattr(rates, name))
        if draw < edge:
            return name
    return None
