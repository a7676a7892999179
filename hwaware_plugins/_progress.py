"""A tiny progress bar on stderr (no tqdm dependency).

:func:`progress_bar` returns a :class:`ProgressBar` that draws itself only when
its stream is a terminal (or when forced) and the user did not ask for
``--quiet``; otherwise every call is a cheap no-op, so callers never branch.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

_MIN_REDRAW_S = 0.1


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def render_bar(label: str, done: int, total: int, elapsed_s: float, note: str, width: int) -> str:
    """One line of a progress bar, e.g. ``study [#####.....] 12/24  50% 0:07 note``. Pure."""
    fraction = min(1.0, done / total) if total > 0 else 1.0
    filled = round(fraction * width)
    bar = "#" * filled + "." * (width - filled)
    line = f"{label} [{bar}] {done}/{total} {fraction:4.0%} {_clock(elapsed_s)}"
    return f"{line} {note}" if note else line


class ProgressBar:
    """A one-line progress bar redrawn in place with a carriage return.

    Thread-safe: ``update`` may be called from several threads (e.g. an Optuna
    callback with ``n_jobs > 1``). Redraws at most every 0.1 s, so an update
    costs a lock and a clock read. A disabled bar writes nothing.

    :param total: the number of steps expected.
    :param label: text before the bar.
    :param stream: where to draw (default ``sys.stderr``).
    :param enabled: draw or not (see :func:`progress_bar` for the usual rule).
    :param width: characters of the bar itself.
    """

    def __init__(
        self,
        total: int,
        *,
        label: str = "",
        stream: TextIO | None = None,
        enabled: bool = True,
        width: int = 30,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream
        self.enabled = enabled
        self.width = width
        self.done = 0
        self._note = ""
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._drawn_at = -1.0
        self._closed = False

    def update(self, steps: int = 1, *, note: str = "") -> None:
        """Advance by ``steps`` and optionally change the note after the bar."""
        with self._lock:
            self.done += steps
            if note:
                self._note = note
            now = time.monotonic()
            if now - self._drawn_at >= _MIN_REDRAW_S or self.done >= self.total:
                self._draw(now)

    def advance_to(self, done: int, *, note: str = "") -> None:
        """Move forward to ``done`` steps when a count is polled rather than stepped.

        Never moves back, never past ``total``. Same cost as :meth:`update`.
        """
        with self._lock:
            step = min(done, self.total) - self.done
        if step > 0 or note:
            self.update(max(step, 0), note=note)

    def close(self) -> None:
        """Draw the final state and end the line (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.enabled:
                self._draw(time.monotonic())
                self._out().write("\n")
                self._out().flush()

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def _draw(self, now: float) -> None:
        self._drawn_at = now
        if not self.enabled:
            return
        line = render_bar(
            self.label, self.done, self.total, now - self._started, self._note, self.width
        )
        out = self._out()
        out.write("\r" + line + "\x1b[K")
        out.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def progress_bar(
    total: int,
    *,
    label: str = "",
    quiet: bool = False,
    force: bool = False,
    stream: TextIO | None = None,
) -> ProgressBar:
    """A :class:`ProgressBar` that draws when not ``quiet`` and the stream is a TTY (or ``force``).

    ``quiet`` wins over ``force``. The stream defaults to ``sys.stderr``, read
    when the bar is made. Cost: one ``isatty`` call.
    """
    out = stream if stream is not None else sys.stderr
    is_tty = bool(getattr(out, "isatty", lambda: False)())
    return ProgressBar(total, label=label, stream=out, enabled=not quiet and (force or is_tty))
