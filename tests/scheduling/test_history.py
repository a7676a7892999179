"""History: incremental statistics equal a rebuild from records; queries a scheduler makes."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.scheduling import TRIAL_STATES, History

_records = st.lists(
    st.fixed_dictionaries(
        {
            "subspace": st.sampled_from(["a", "b", "c"]),
            "device_class": st.sampled_from(["gpu", "cpu"]),
            "runtime_s": st.floats(0.0, 100.0),
            "loss": st.floats(0.0, 1.0),
            "state": st.sampled_from(TRIAL_STATES),
            "params": st.fixed_dictionaries({"x": st.floats(-5, 5)}),
        }
    ),
    max_size=40,
)


def _view(h: History) -> object:
    pairs = [(s, c) for s in "abc" for c in ("gpu", "cpu")]
    return (
        len(h),
        h.n_complete,
        h.best_losses(),
        h.kth_best_loss(3),
        [h.count(s, c) for s, c in pairs],
        [h.mean_runtime(s, c) for s, c in pairs],
        [h.median_runtime(s, c) for s, c in pairs],
        [h.failures(s, c) for s, c in pairs],
        [h.count_losses_at_most(s, 0.5) for s in "abc"],
        [h.params_and_losses(s, last=5) for s in "abc"],
    )


@settings(max_examples=60, deadline=None)
@given(_records)
def test_incremental_equals_rebuilt(records: list[dict[str, object]]) -> None:
    h = History()
    for r in records:
        h.record(
            r["subspace"],
            r["device_class"],
            **{k: v for k, v in r.items() if k not in ("subspace", "device_class")},
        )  # type: ignore[arg-type]
    rebuilt = History.from_records(h.records())
    assert _view(rebuilt) == _view(h)
    assert rebuilt.records() == h.records()


def test_queries_on_a_worked_example() -> None:
    h = History()
    h.record("svm", "cpu", runtime_s=2.0, loss=0.3, params={"C": 1.0, "kernel": "rbf"})
    h.record("svm", "cpu", runtime_s=4.0, loss=0.1, peak_memory_mb=100)
    h.record("svm", "gpu", runtime_s=1.0, state="oom", peak_memory_mb=900)
    h.record("mlp", "gpu", runtime_s=9.0, loss=0.2)
    assert h.count() == 4 and h.count(complete=True) == 3
    assert h.count("svm") == 3 and h.count("svm", "cpu") == 2
    assert h.mean_runtime("svm", "cpu") == 3.0 and h.median_runtime("svm", "cpu") == 3.0
    assert h.mean_runtime("mlp", "cpu") is None
    assert h.best_loss() == 0.1 and h.best_loss("mlp") == 0.2
    assert h.failures("svm", "gpu") == {"oom": 1}
    assert h.peak_memory_mb("svm", "gpu") == 900 and h.peak_memory_mb("svm", "cpu") == 100
    assert h.kth_best_loss(2) == 0.2 and h.kth_best_loss(99) == 0.3
    assert h.count_losses_at_most("svm", 0.2) == 1
    # only numeric parameters are kept
    assert h.params_and_losses("svm") == ([{"C": 1.0}], [0.3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runtime_s": -1.0}, "runtime_s"),
        ({"runtime_s": 1.0, "state": "exploded"}, "unknown trial state"),
        ({"runtime_s": 1.0, "loss": float("nan")}, "finite"),
    ],
)
def test_bad_records_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        History().record("a", "cpu", **kwargs)  # type: ignore[arg-type]


def test_from_records_names_the_bad_record() -> None:
    with pytest.raises(ConfigError, match="record 1 lacks runtime_s"):
        History.from_records(
            [
                {"subspace": "a", "device_class": "c", "runtime_s": 1},
                {"subspace": "a", "device_class": "c"},
            ]
        )


def test_concurrent_records_are_all_kept() -> None:
    h = History()

    def work(k: int) -> None:
        for i in range(500):
            h.record(f"s{k}", "cpu", runtime_s=1.0, loss=i / 500)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(h) == 2000 and h.n_complete == 2000
    assert [h.count(f"s{k}") for k in range(4)] == [500] * 4
