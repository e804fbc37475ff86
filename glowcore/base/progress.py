"""Progress reporting and cancellation for long jobs (training, inpainting, export, directions).

Long functions take two optional keyword arguments:

* ``progress``: a callable ``progress(done, total, message)`` called as work advances;
* ``cancel``: a :class:`CancelToken`; when it is set the function raises :class:`Cancelled` at
  its next check, after cleaning up (no partial files are left behind).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, Optional, TextIO

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


class ConsoleProgress:
    """A one-line progress bar on a terminal: ``[#####     ] 50/100 12.3 it/s ETA 0:04 message``.

    Use as the ``progress`` callback of any long function. On a non-terminal stream it prints a
    plain line at most every ``interval`` seconds, so logs stay readable.
    """

    def __init__(self, label: str = "", stream: TextIO | None = None, unit: str = "it", interval: float = 0.2):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.unit = unit
        self.interval = interval
        self.start = time.monotonic()
        self._last = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._open = False

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        final = total > 0 and done >= total
        if not final and now - self._last < (self.interval if self._tty else max(self.interval, 5.0)):
            return
        self._last = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        frac = done / total if total > 0 else 0.0
        eta = (total - done) / rate if rate > 0 and total > 0 else 0.0
        width = 24
        bar = "#" * int(frac * width) + " " * (width - int(frac * width))
        line = f"{self.label} [{bar}] {done}/{total} {rate:.1f} {self.unit}/s ETA {int(eta) // 60}:{int(eta) % 60:02d} {message}".strip()
        if self._tty:
            self.stream.write("\r\x1b[2K" + line + ("\n" if final else ""))
            self._open = not final
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._tty and self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
