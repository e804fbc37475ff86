"""The GUI side of the worker's jobs: submit a typed job with what to do when it ends.

:class:`JobRunner` keeps one ``(on_done, on_fail)`` pair per submitted job, shows long jobs in the
status bar's :class:`~explorer.widgets.common.JobBar` (progress and Cancel), and says in the
window's message bar why a job failed when its caller did not handle that itself.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, Signal

from .protocol import Job
from .widgets.common import JobBar

__all__ = ["JobRunner"]

OnDone = Callable[[Any], None]
OnFail = Callable[[str, bool], None]  # message, cancelled


class JobRunner(QObject):
    """Submits jobs to ``worker`` and calls back in the GUI thread when each ends.

    ``show_error(text)`` and ``show_info(text)`` report failures and cancellations that no
    ``on_fail`` handled. ``started`` and ``ended`` announce every job (id, job) to whoever
    follows a kind of job (e.g. the inpainting controller greys its button).
    """

    started = Signal(int, object)  # id, Job
    ended = Signal(int, object, bool)  # id, Job, succeeded

    def __init__(self, worker: Any, jobbar: JobBar, show_error: Callable[[str], None], show_info: Callable[[str], None]) -> None:
        super().__init__()
        self.worker = worker
        self.jobbar = jobbar
        self._show_error = show_error
        self._show_info = show_info
        self._callbacks: dict[int, tuple[Optional[OnDone], Optional[OnFail]]] = {}
        worker.command_started.connect(self._on_started)
        worker.command_done.connect(self._on_done)
        worker.command_failed.connect(self._on_failed)
        worker.progress.connect(jobbar.update_progress)
        # A call in the GUI thread (this object's slot), not a queued slot of the worker: the
        # worker's thread is busy with the job, so a queued cancel would arrive after it.
        jobbar.cancel_requested.connect(self._cancel)

    def run(self, job: Job, on_done: Optional[OnDone] = None, on_fail: Optional[OnFail] = None) -> int:
        """Queue ``job``; ``on_done(result)`` or ``on_fail(message, cancelled)`` follows. Returns its id."""
        cid = self.worker.submit(job)
        self._callbacks[cid] = (on_done, on_fail)
        return cid

    @property
    def pending(self) -> int:
        """Jobs submitted whose end has not yet been handled."""
        return len(self._callbacks)

    def pending_ids(self) -> set[int]:
        return set(self._callbacks)

    def cancel_current(self) -> None:
        """Cancel the job shown in the job bar (Esc), as its Cancel button does."""
        self.jobbar.request_cancel()

    def _cancel(self, cid: int) -> None:
        self.worker.cancel(cid)  # thread-safe: sets the job's cancel flag

    def _on_started(self, cid: int, job: Job) -> None:
        if job.long:
            self.jobbar.start(cid, job.title)
        self.started.emit(cid, job)

    def _on_done(self, cid: int, job: Job, result: Any) -> None:
        self.jobbar.finish(cid)
        self.ended.emit(cid, job, True)
        on_done, _ = self._callbacks.pop(cid, (None, None))
        if on_done is not None:
            on_done(result)

    def _on_failed(self, cid: int, job: Job, message: str, cancelled: bool) -> None:
        self.jobbar.finish(cid)
        self.ended.emit(cid, job, False)
        _, on_fail = self._callbacks.pop(cid, (None, None))
        if on_fail is not None:
            on_fail(message, cancelled)
        elif cancelled:
            self._show_info(f"{job.title or job.kind.replace('_', ' ').capitalize()}: cancelled.")
        else:
            self._show_error(f"{job.fail_title or job.kind.replace('_', ' ').capitalize() + ' failed'}: {message}")
