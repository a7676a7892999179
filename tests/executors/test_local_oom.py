"""LocalExecutor: CUDA out-of-memory failures are re-placed on bigger devices, boundedly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.executors import LocalExecutor

from . import _tasks

Pool = Callable[..., Any]


def test_oom_is_re_placed_on_a_device_with_more_memory(
    make_pool: Pool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "hwaware_plugins.executors"), \
            LocalExecutor(make_pool()) as ex:
        outcome = ex.submit(_tasks.oom_on_small, 6000, prefer=["gpu-small"]).result()
    assert outcome.state == "complete" and outcome.value in ("gpu-mid", "gpu-big")
    first, second = outcome.attempts
    assert first.device_id == "gpu-small" and first.state == "oom"
    assert "CUDA out of memory" in (first.reason or "") and "6000 MiB" in (first.reason or "")
    assert second.state == "complete" and outcome.memory_mb == 6000
    assert "re-placing with 6000 MiB" in caplog.text


def test_oom_retries_are_bounded(make_pool: Pool) -> None:
    # Needs more than any device: small -> mid (6000) -> big (12000), then it gives up.
    with LocalExecutor(make_pool(), max_oom_retries=2) as ex:
        outcome = ex.submit(_tasks.oom_on_small, 10**6, prefer=["gpu-small"]).result()
    assert outcome.state == "oom" and "CUDA out of memory" in (outcome.error or "")
    assert [a.device_id for a in outcome.attempts] == ["gpu-small", "gpu-mid", "gpu-big"]
    assert all(a.state == "oom" for a in outcome.attempts)


def test_oom_without_retries_is_reported_at_once(make_pool: Pool) -> None:
    with LocalExecutor(make_pool(), max_oom_retries=0) as ex:
        outcome = ex.submit(_tasks.oom_on_small, 6000, prefer=["gpu-small"]).result()
    assert outcome.state == "oom" and len(outcome.attempts) == 1


def test_oom_with_no_bigger_device_says_so(make_pool: Pool) -> None:
    from .conftest import GPUS

    with LocalExecutor(make_pool(GPUS[:1])) as ex:
        outcome = ex.submit(_tasks.oom_on_small, 6000).result()
    assert outcome.state == "oom"
    assert outcome.attempts[-1].device_id is None
    assert "re-placement impossible" in (outcome.attempts[-1].reason or "")


def test_memory_packing_reserves_more_on_retry(make_pool: Pool) -> None:
    pool = make_pool(packing="memory")
    with LocalExecutor(pool) as ex:
        outcome = ex.submit(_tasks.oom_on_small, 6000, memory_mb=3000,
                            prefer=["gpu-small"]).result()
    assert outcome.state == "complete"
    assert outcome.attempts[0].device_id == "gpu-small" and outcome.memory_mb == 4500


def test_a_task_pinned_by_its_filter_moves_only_where_the_oom_filter_allows(
    make_pool: Pool, caplog: pytest.LogCaptureFixture
) -> None:
    def small_only(device: Any) -> bool:
        return bool(device.id == "gpu-small")

    def any_gpu(device: Any) -> bool:
        return bool(device.kind == "gpu")

    with LocalExecutor(make_pool()) as ex:
        pinned = ex.submit(_tasks.oom_on_small, 6000, device_filter=small_only).result()
        with caplog.at_level(logging.WARNING, "hwaware_plugins.executors"):
            moved = ex.submit(_tasks.oom_on_small, 6000, device_filter=small_only,
                              oom_device_filter=any_gpu).result()
    assert pinned.state == "oom"
    assert "re-placement impossible" in (pinned.attempts[-1].reason or "")
    assert moved.state == "complete" and moved.value in ("gpu-mid", "gpu-big")
    assert moved.attempts[0].device_id == "gpu-small" and moved.memory_mb == 6000
    assert "ran out of memory on gpu-small; re-placing with 6000 MiB" in caplog.text


def test_an_oom_filter_that_is_not_callable_is_named(make_pool: Pool) -> None:
    with LocalExecutor(make_pool()) as ex, pytest.raises(
        ConfigError, match="oom_device_filter must be a callable taking a Device, or None"
    ):
        ex.submit(_tasks.add, 1, 2, oom_device_filter="gpu")
