"""The stderr progress bar (tqdm): drawn only on a terminal (or forced), never when quiet."""

from __future__ import annotations

import io
import threading

from tqdm import tqdm

from hwaware_plugins._progress import progress_bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_is_tqdms_with_the_label_and_the_note() -> None:
    out = _Tty()
    with progress_bar(10, label="study", stream=out) as bar:
        assert isinstance(bar._bar, tqdm)
        bar.update(5, note="best 0.1")
    last = out.getvalue().rstrip("\n").rsplit("\r", 1)[-1]
    assert last.startswith("study:  50%|") and "5/10" in last and last.endswith(", best 0.1]")


def test_draws_on_a_terminal_and_ends_the_line() -> None:
    out = _Tty()
    with progress_bar(3, label="sim", stream=out) as bar:
        for _ in range(3):
            bar.update(note="fcfs")
    text = out.getvalue()
    assert "\r" in text and "100%" in text and "3/3" in text and text.endswith("\n")


def test_silent_when_not_a_terminal_or_quiet() -> None:
    pipe, tty = io.StringIO(), _Tty()
    for bar in (progress_bar(2, stream=pipe), progress_bar(2, stream=tty, quiet=True, force=True)):
        bar.update(2)
        bar.close()
    assert pipe.getvalue() == "" and tty.getvalue() == ""


def test_forced_on_a_pipe() -> None:
    out = io.StringIO()
    with progress_bar(1, stream=out, force=True) as bar:
        bar.update()
    assert "1/1" in out.getvalue()


def test_updates_from_threads_are_all_counted() -> None:
    bar = progress_bar(400, stream=io.StringIO(), force=True)

    def work() -> None:
        for _ in range(100):
            bar.update()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    bar.close()
    assert bar.done == 400


def test_advance_to_follows_a_polled_count_forward_only_and_up_to_the_total() -> None:
    out = _Tty()
    with progress_bar(5, label="chaos", stream=out) as bar:
        bar.advance_to(2)
        bar.advance_to(1)  # a stale poll never moves the bar back
        assert bar.done == 2
        bar.advance_to(9, note="retries")  # retries can start more trials than requested
        assert bar.done == 5
    text = out.getvalue()
    assert "chaos: 100%" in text and "5/5" in text and "retries" in text
