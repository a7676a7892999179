"""The executors the core registers by name."""

from __future__ import annotations

from typing import Any

from hwaware_plugins._components import Component


def _local(*args: Any, **kwargs: Any) -> Any:
    from hwaware_plugins.executors._local import LocalExecutor

    return LocalExecutor(*args, **kwargs)


def _thread(*args: Any, **kwargs: Any) -> Any:
    from hwaware_plugins.executors._thread import ThreadExecutor

    return ThreadExecutor(*args, **kwargs)


def _dask(*args: Any, **kwargs: Any) -> Any:
    from hwaware_plugins.executors._dask import DaskExecutor

    return DaskExecutor(*args, **kwargs)


COMPONENTS: list[Component] = [
    Component(
        kind="executor",
        name="local",
        factory=_local,
        framework=None,
        description="persistent worker processes pinned to this node's slots, reused per task",
    ),
    Component(
        kind="executor",
        name="thread",
        factory=_thread,
        framework=None,
        description="coordinator threads, one lease each, told their device (current_device)",
    ),
    Component(
        kind="executor",
        name="dask",
        factory=_dask,
        framework=None,
        description="a Dask cluster whose workers advertise their devices; pinned per task",
    ),
]
