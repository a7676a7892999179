"""Progress bars on stderr, drawn by tqdm.

:func:`progress_bar` returns a :class:`ProgressBar`: a small wrapper over a
``tqdm`` bar that draws only when its stream is a terminal (or when forced) and
the user did not ask for ``--quiet``; otherwise no tqdm bar exists and every call
is a cheap no-op, so callers never branch. The wrapper adds what the commands
need on top of tqdm: a note after the bar, :meth:`ProgressBar.advance_to` for
counts that are polled rather than stepped, and a count kept even when nothing
is drawn.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import Any, TextIO

_MIN_REDRAW_S = 0.1


class ProgressBar:
    """A one-line progress bar (tqdm) with a note, redrawn in place.

    Thread-safe: ``update`` may be called from several threads (e.g. an Optuna
    callback with ``n_jobs > 1``). tqdm redraws at most every 0.1 s, so an
    update costs a lock and a clock read. A disabled bar creates no tqdm object
    and writes nothing.

    :param total: the number of steps expected.
    :param label: text before the bar.
    :param stream: where to draw (default ``sys.stderr``, read when the bar is made).
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
        self.enabled = enabled
        self.done = 0
        self._lock = threading.Lock()
        self._closed = False
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=label or None,
                file=stream if stream is not None else sys.stderr,
                ncols=None,
                bar_format="{l_bar}{bar:" + str(width) + "}| {n_fmt}/{total_fmt} "
                "[{elapsed}{postfix}]",
                mininterval=_MIN_REDRAW_S,
                dynamic_ncols=False,
                leave=True,
            )

    def update(self, steps: int = 1, *, note: str = "") -> None:
        """Advance by ``steps`` and optionally change the note after the bar."""
        with self._lock:
            self.done += steps
            if self._bar is None or self._closed:
                return
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(steps)

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
            if self._bar is not None:
                self._bar.close()

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
    when the bar is made. Cost: one ``isatty`` call (plus tqdm's set-up when drawn).
    """
    out = stream if stream is not None else sys.stderr
    is_tty = bool(getattr(out, "isatty", lambda: False)())
    return ProgressBar(total, label=label, stream=out, enabled=not quiet and (force or is_tty))
