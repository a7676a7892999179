"""CPU slots share the host's cores: affinity sets, thread counts, user caps (pure rules)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwaware_plugins.hardware._cores import (
    CoreShare,
    capped_thread_count,
    cpu_slot_shares,
    split_cores,
)
from hwaware_plugins.hardware._device import Device

PROPERTY = settings(derandomize=True, database=None, max_examples=200, deadline=None)


def cpu(number: int, *, cores: int | None = None, slots: int = 1, host: str = "h") -> Device:
    return Device(id=f"{host}/cpu:{number}", kind="cpu", name="C", cores=cores, slots=slots,
                  host=host)


def load_per_core(shares: list[CoreShare]) -> Counter[int]:
    """Threads per core, a slot's threads spread evenly over its affinity set."""
    load: Counter[int] = Counter()
    for share in shares:
        for core in share.cores:
            load[core] += share.threads / len(share.cores)  # type: ignore[assignment]
    return load


@PROPERTY
@given(
    cores=st.lists(st.integers(0, 255), min_size=1, max_size=64, unique=True),
    parts=st.integers(1, 16),
)
def test_split_never_oversubscribes_a_core_beyond_its_share(cores: list[int], parts: int) -> None:
    shares = split_cores(cores, parts)
    assert len(shares) == parts
    for share in shares:
        assert share.cores and set(share.cores) <= set(cores)
        assert 1 <= share.threads <= len(share.cores)
    fair = max(1.0, parts / len(cores))  # each core carries at most this many threads
    assert all(value <= fair + 1e-9 for value in load_per_core(shares).values())
    if len(cores) >= parts:
        assert [c for share in shares for c in share.cores] == cores  # disjoint, in order
        assert sum(share.threads for share in shares) == len(cores)
        assert max(s.threads for s in shares) - min(s.threads for s in shares) <= 1
    else:
        assert all(share == CoreShare(tuple(cores), 1) for share in shares)


def test_split_rejects_nothing_to_split() -> None:
    with pytest.raises(ValueError, match="at least one core"):
        split_cores([], 2)


@PROPERTY
@given(
    counts=st.lists(st.integers(1, 4), min_size=1, max_size=6),
    host_cores=st.integers(1, 24),
)
def test_count_n_devices_of_a_host_share_its_cores(counts: list[int], host_cores: int) -> None:
    # `count = N` entries (no `cores`): all their slots together get one share each.
    devices = [cpu(i, slots=slots) for i, slots in enumerate(counts)]
    shares = cpu_slot_shares(devices, list(range(host_cores)))
    flat = [share for device in devices for share in shares[device.id]]
    assert [len(shares[d.id]) for d in devices] == counts
    total = sum(counts)
    fair = max(1.0, total / host_cores)
    assert all(value <= fair + 1e-9 for value in load_per_core(flat).values())
    if host_cores >= total:
        used = [c for share in flat for c in share.cores]
        assert len(used) == len(set(used)) == host_cores  # disjoint and every core used


@PROPERTY
@given(
    declared=st.lists(
        st.tuples(st.one_of(st.none(), st.integers(1, 8)), st.integers(1, 4)),
        min_size=1,
        max_size=5,
    ),
    host_cores=st.integers(1, 16),
)
def test_every_slot_gets_threads_within_its_cores(
    declared: list[tuple[int | None, int]], host_cores: int
) -> None:
    devices = [cpu(i, cores=c, slots=s) for i, (c, s) in enumerate(declared)]
    shares = cpu_slot_shares(devices, list(range(host_cores)))
    for device in devices:
        assert len(shares[device.id]) == device.slots
        for share in shares[device.id]:
            assert 1 <= share.threads <= len(share.cores)
            assert set(share.cores) <= set(range(host_cores))
    named = sum(min(c, host_cores) for c, _ in declared if c is not None)
    if named <= host_cores and all(c is None or c >= s for c, s in declared):
        # Declared blocks fit: devices that name cores never share one with each other.
        owners: dict[int, str] = {}
        for device in devices:
            if device.cores is None:
                continue
            for core in {c for share in shares[device.id] for c in share.cores}:
                assert owners.setdefault(core, device.id) == device.id


def test_cores_and_slots_form_is_unchanged() -> None:
    shares = cpu_slot_shares([cpu(0, cores=4, slots=2)], list(range(8)))
    assert shares["h/cpu:0"] == [CoreShare((0, 1), 2), CoreShare((2, 3), 2)]


def test_devices_without_cores_take_what_named_ones_leave() -> None:
    devices = [cpu(0, cores=2), cpu(1), cpu(2)]
    shares = cpu_slot_shares(devices, list(range(6)))
    assert shares["h/cpu:0"] == [CoreShare((0, 1), 2)]
    assert shares["h/cpu:1"] == [CoreShare((2, 3), 2)]
    assert shares["h/cpu:2"] == [CoreShare((4, 5), 2)]


def test_hosts_share_their_cores_separately_and_gpus_are_left_out() -> None:
    gpu = Device(id="h/gpu:0", kind="gpu", name="G", index=0, host="h")
    devices = [cpu(0), cpu(1), cpu(0, host="other"), gpu]
    shares = cpu_slot_shares(devices, [0, 1])
    assert shares["h/cpu:0"] == [CoreShare((0,), 1)]
    assert shares["h/cpu:1"] == [CoreShare((1,), 1)]
    assert shares["other/cpu:0"] == [CoreShare((0, 1), 2)]
    assert "h/gpu:0" not in shares


@PROPERTY
@given(
    wanted=st.integers(1, 64),
    user=st.one_of(st.none(), st.integers(-2, 64), st.text(max_size=3)),
)
def test_a_thread_count_the_user_set_is_never_raised(wanted: int, user: object) -> None:
    current = None if user is None else f" {user}" if isinstance(user, int) else str(user)
    result = capped_thread_count(wanted, current)
    assert 1 <= result <= wanted
    text = "" if current is None else current.strip()
    user_set = text.isascii() and text.isdigit() and int(text) >= 1
    assert result == (min(wanted, int(text)) if user_set else wanted)
