"""Progress reporting and cancellation for long jobs (training, inpainting, export, directions).

Long functions take two optional keyword arguments:

* ``progress``: a callable ``progress(done, total, message)`` called as work advances;
* ``cancel``: a :class:`CancelToken`; when it is set the function raises :class:`Cancelled` at
  its next check, after cleaning up (no partial files are left behind).
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from typing import Callable, Optional, TextIO

from tqdm import tqdm

__all__ = ["Cancelled", "CancelToken", "ProgressFn", "ConsoleProgress", "report", "check_cancel"]

ProgressFn = Callable[[int, int, str], None]


class Cancelled(Exception):
    """Raised inside a long job when its :class:`CancelToken` was set."""


class CancelToken:
    """A thread-safe flag a GUI or signal handler sets to stop a long job.

    ``when``: also cancelled whenever ``when()`` is true (a flag owned elsewhere, such as a
    ``threading.Event``'s ``is_set``, or a condition like "a newer picture is wanted")."""

    def __init__(self, when: Optional[Callable[[], bool]] = None) -> None:
        self._event = threading.Event()
        self._when = when

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or (self._when is not None and bool(self._when()))

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled("cancelled")


def check_cancel(cancel: Optional[CancelToken]) -> None:
    if cancel is not None:
        cancel.check()


def report(progress: Optional[ProgressFn], done: int, total: int, message: str = "") -> None:
    if progress is not None:
        progress(done, total, message)


def _terminal_width(stream: TextIO) -> Optional[int]:
    """None where the terminal reports its width (tqdm follows it as it changes), else 80 (with a
    height of 24: tqdm draws nothing on a terminal that says it has 0 rows, as some ptys do)."""
    try:
        return None if os.get_terminal_size(stream.fileno()).columns > 0 else 80
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None  # not a real file (tqdm then draws at its default width)


class ConsoleProgress:
    """Terminal progress for any long function's ``progress`` callback, drawn by tqdm.

    On a terminal: tqdm's live bar (``label:  50%|#####     | 50/100 [00:04<00:04, 12.3it/s, message]``;
    a total of 0 means unknown, and a total that changes, like a time-bounded training run's
    estimate, updates the bar). On any other stream (a log file, CI): tqdm's same line, printed
    plainly at most every ``max(interval, 5)`` seconds and at the end, so logs stay readable
    instead of filling with carriage returns. ``write(message)`` prints a line above the bar.
    """

    def __init__(self, label: str = "", stream: TextIO | None = None, unit: str = "it", interval: float = 0.2):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.unit = unit
        self.interval = interval
        self.start = time.monotonic()
        self._last = -float("inf")
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Optional[tqdm] = None

    def __call__(self, done: int, total: int, message: str = "") -> None:
        final = total > 0 and done >= total
        if self._tty:
            self._draw(done, total, message, final)
            return
        now = time.monotonic()
        if not final and now - self._last < max(self.interval, 5.0):
            return
        self._last = now
        line = tqdm.format_meter(done, total if total > 0 else None, now - self.start, prefix=self.label, unit=self.unit,
                                 postfix=message or None, ncols=0)
        if final:
            self.start = now
        self.stream.write(line.strip() + "\n")
        self.stream.flush()

    def _draw(self, done: int, total: int, message: str, final: bool) -> None:
        bar = self._bar
        if bar is None:
            width = _terminal_width(self.stream)  # a terminal that reports no size (0 columns) gets 80
            bar = self._bar = tqdm(total=total if total > 0 else None, desc=self.label or None, unit=self.unit,
                                   file=self.stream, mininterval=self.interval, dynamic_ncols=width is None,
                                   ncols=width, nrows=None if width is None else 24, leave=True)
            # the rate counts from this object's start (tqdm's clock is time.time, not monotonic)
            bar.start_t = bar.last_print_t = bar._time() - (time.monotonic() - self.start)
        elif total > 0 and bar.total != total:
            bar.total = total
        bar.set_postfix_str(message, refresh=False)
        bar.update(done - bar.n)
        if final:
            self.close()

    def write(self, message: str) -> None:
        """Print ``message`` on its own line, above the bar while one is drawn."""
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            self.stream.write(message + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.start = time.monotonic()  # a next pass (e.g. a second data split) gets its own rate
