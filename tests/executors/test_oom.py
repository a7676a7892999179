"""Recognising accelerator OOM errors and sizing the retry."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwaware_plugins.executors import is_oom_error, next_memory_need


def _torch_like_oom() -> type[RuntimeError]:
    # The shape of torch.cuda.OutOfMemoryError without importing torch.
    return type("OutOfMemoryError", (RuntimeError,), {"__module__": "torch.cuda"})


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"),
        RuntimeError("CUDA error: out of memory"),
        ValueError("cuda OUT OF MEMORY while allocating"),
        _torch_like_oom()("anything at all"),
    ],
)
def test_accelerator_oom_is_recognised(exc: BaseException) -> None:
    assert is_oom_error(exc)


@pytest.mark.parametrize(
    "exc",
    [
        MemoryError("host out of memory"),
        RuntimeError("out of range"),
        type("OutOfMemoryError", (Exception,), {"__module__": "mylib"})("x"),
        KeyboardInterrupt(),
    ],
)
def test_other_errors_are_not_oom(exc: BaseException) -> None:
    assert not is_oom_error(exc)


def test_oom_is_found_through_a_wrapping_exception() -> None:
    try:
        try:
            raise RuntimeError("CUDA out of memory.")
        except RuntimeError as inner:
            raise ValueError("training step failed") from inner
    except ValueError as outer:
        assert is_oom_error(outer)


def test_cyclic_exception_chains_terminate() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert not is_oom_error(a)


def test_need_grows_from_the_request_under_memory_packing() -> None:
    need = next_memory_need(requested_mb=3000, leased_mb=3000, peak_mb=2500,
                            device_memory_mb=16000, exclusive=False, growth=1.5)
    assert need == 4500


def test_need_exceeds_the_failed_device_under_exclusive_packing() -> None:
    need = next_memory_need(requested_mb=None, leased_mb=None, peak_mb=None,
                            device_memory_mb=4000, exclusive=True, growth=1.5)
    assert need == 6000


def test_no_need_when_nothing_is_known() -> None:
    assert next_memory_need(requested_mb=None, leased_mb=None, peak_mb=None,
                            device_memory_mb=8000, exclusive=False, growth=2.0) is None


_sizes = st.one_of(st.none(), st.floats(min_value=1, max_value=1e6))


@given(requested=_sizes, leased=_sizes, peak=_sizes, device=_sizes,
       exclusive=st.booleans(), growth=st.floats(min_value=1.01, max_value=4))
def test_need_always_exceeds_everything_it_knew(
    requested: float | None, leased: float | None, peak: float | None,
    device: float | None, exclusive: bool, growth: float,
) -> None:
    need = next_memory_need(requested_mb=requested, leased_mb=leased, peak_mb=peak,
                            device_memory_mb=device, exclusive=exclusive, growth=growth)
    known = [v for v in (requested, leased, peak) if v is not None]
    if exclusive and device is not None:
        known.append(device)
    if not known:
        assert need is None
    else:
        assert need is not None and need > max(known)
