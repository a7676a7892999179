"""Finding child processes a test left behind."""

from __future__ import annotations

import psutil


def _is_long_lived_helper(process: psutil.Process) -> bool:
    """multiprocessing's resource tracker outlives the module that started it, by design."""
    try:
        return any("resource_tracker" in part for part in process.cmdline())
    except psutil.Error:
        return True


def stray_children(baseline: set[int] | frozenset[int] = frozenset()) -> list[psutil.Process]:
    """Live child processes of this interpreter, except ``baseline`` and long-lived helpers.

    Workers let go in the background (``optimize`` returns while they leave) are waited
    for first, as interpreter exit would.
    """
    from hwaware_plugins.executors._worker import wait_for_leaving_workers

    wait_for_leaving_workers()
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.pid in baseline or child.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.NoSuchProcess:
            continue
        if not _is_long_lived_helper(child):
            found.append(child)
    return found
