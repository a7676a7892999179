"""A module whose import takes a while, as one importing torch does."""

from __future__ import annotations

import os
import time

time.sleep(1.5)


def quick() -> int:
    """Return this process's pid at once."""
    return os.getpid()
