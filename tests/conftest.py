"""Test-session isolation: per-user state and caches go to a temporary folder."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from hypothesis import settings

# Property tests are deterministic: the same examples on every run and machine.
settings.register_profile("hwaware", derandomize=True, deadline=None)
settings.load_profile("hwaware")

# A shell that starts the tests as a background job ignores SIGINT for them (and for every
# process they start): Ctrl-C tests would then see nothing. Give Python its handler back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep lease state and the speed cache of the tests out of the user's real folders."""
    root = tmp_path_factory.mktemp("user")
    saved = {key: os.environ.get(key) for key in ("XDG_RUNTIME_DIR", "XDG_CACHE_HOME")}
    os.environ["XDG_RUNTIME_DIR"] = str(root / "run")
    os.environ["XDG_CACHE_HOME"] = str(root / "cache")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
