"""A GUI monkey for the explorer window: random but valid user actions, driven through the widgets.

:class:`Monkey` picks actions with a seeded ``random.Random`` and performs them the way a user
would reach them: ``QAction.trigger()`` for menu items and shortcuts, ``click()`` / ``setValue()``
/ mouse events on the widgets, file dialogs answered by patched ``QFileDialog`` functions. It never
calls the engine. The event loop runs during the wait actions (1 to 50 ms), inside slider drags
and while it waits for the picture or for the jobs to finish; a burst does 3 to 15 quick actions
with no event processing in between; the job queue is kept to a few jobs, as a user waiting for
them would.

:class:`Catcher` records every uncaught Python exception (``sys.excepthook``, which PySide calls
for exceptions in slots and event handlers, and ``threading.excepthook``), every exception the
model worker caught and logged as unexpected (anything but ``ValueError``/``OSError``), and every
Qt warning, critical or fatal message.

Used by ``test_hardening_gui.py`` (CI: a short run) and ``benchmarks/monkey_long.py`` (a long one).
"""

from __future__ import annotations

import collections
import gc
import os
import random
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from PySide6.QtCore import QObject, QPoint, QPointF, Qt, QtMsgType, Slot, qInstallMessageHandler
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog

from .conftest import WAIT_MS, wait_settled

__all__ = ["Catcher", "Monkey", "rss_mb", "peak_rss_mb", "BENIGN_QT_MESSAGES"]

#: Qt messages that do not indicate an error (the offscreen platform and fonts say these).
BENIGN_QT_MESSAGES = (
    "propagateSizeHints",
    "QFont::",
    "qt.qpa.",
    "Populating font family aliases",
    "QStandardPaths",
)


def rss_mb() -> float:
    """Resident memory of this process now, in MB (``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """The highest resident memory of this process so far, in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Catcher:
    """Context manager recording exceptions and Qt messages (and passing them on as before)."""

    def __init__(self) -> None:
        self.exceptions: list[str] = []
        self.qt_messages: list[tuple[str, str]] = []
        self.worker_logged: list[str] = []
        self._lock = threading.Lock()

    # -- hooks
    def _on_exception(self, etype: Any, value: Any, tb: Any) -> None:
        with self._lock:
            self.exceptions.append("".join(traceback.format_exception(etype, value, tb)))
        if self._prev_sys is not None:
            self._prev_sys(etype, value, tb)

    def _on_thread_exception(self, args: Any) -> None:
        with self._lock:
            self.exceptions.append(
                f"in thread {getattr(args.thread, 'name', '?')}:\n"
                + "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
            )
        self._prev_thread(args)

    def _on_qt_message(self, mode: Any, context: Any, message: str) -> None:
        kind = {QtMsgType.QtWarningMsg: "warning", QtMsgType.QtCriticalMsg: "critical", QtMsgType.QtFatalMsg: "fatal"}.get(mode)
        if kind is not None:
            with self._lock:
                self.qt_messages.append((kind, message))
        if self._prev_qt is not None:
            self._prev_qt(mode, context, message)

    def record_worker_log(self, exc: BaseException) -> None:
        """Called for each exception the model worker logs (see :class:`Monkey`'s patch)."""
        if not isinstance(exc, (ValueError, OSError)):
            with self._lock:
                self.worker_logged.append("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))

    def __enter__(self) -> "Catcher":
        self._prev_sys = sys.excepthook
        self._prev_thread = threading.excepthook
        sys.excepthook = self._on_exception
        threading.excepthook = self._on_thread_exception
        self._prev_qt = qInstallMessageHandler(self._on_qt_message)
        return self

    def __exit__(self, *exc: Any) -> None:
        qInstallMessageHandler(self._prev_qt)
        sys.excepthook = self._prev_sys
        threading.excepthook = self._prev_thread

    # -- verdicts
    def bad_qt_messages(self) -> list[tuple[str, str]]:
        """Qt messages that indicate an error: any critical or fatal one, any warning not known benign."""
        return [(k, m) for k, m in self.qt_messages if k != "warning" or not any(b in m for b in BENIGN_QT_MESSAGES)]

    def problems(self) -> list[str]:
        out = [f"uncaught exception:\n{e}" for e in self.exceptions]
        out += [f"exception logged by the worker:\n{e}" for e in self.worker_logged]
        out += [f"Qt {k}: {m}" for k, m in self.bad_qt_messages()]
        return out


def write_photos(folder: Path) -> dict[str, Path]:
    """A few photos to open (PNG, grey JPEG, a large JPEG) and a damaged one."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = {}
    yy, xx = np.mgrid[0:50, 0:40]
    face = np.stack([(xx * 5) % 256, (yy * 4) % 256, ((xx + yy) * 3) % 256], -1).astype(np.uint8)
    Image.fromarray(face).save(folder / "face.png")
    out["png"] = folder / "face.png"
    Image.fromarray(rng.integers(0, 255, (30, 30), dtype=np.uint8)).save(folder / "grey.jpg", quality=90)
    out["jpg"] = folder / "grey.jpg"
    big = np.kron(face, np.ones((12, 12, 1), dtype=np.uint8))  # 600 x 480
    Image.fromarray(big).save(folder / "big.jpg", quality=85)
    out["big"] = folder / "big.jpg"
    data = (folder / "face.png").read_bytes()
    (folder / "broken.png").write_bytes(data[: len(data) // 2])
    out["broken"] = folder / "broken.png"
    return out


class _Relay(QObject):
    """Passes the worker's job signals to the monkey in the GUI thread (a plain Python callable
    connected to them would run in the worker's thread, racing the window's own handlers)."""

    def __init__(self, monkey: "Monkey") -> None:
        super().__init__()
        self.monkey = monkey

    @Slot(int, str)
    def started(self, cid: int, job: Any) -> None:
        self.monkey._on_started(cid, job.kind)

    @Slot(int, str, object)
    def done(self, cid: int, job: Any, result: Any) -> None:
        self.monkey._on_done(cid, job.kind, result)

    @Slot(int, str, str, bool)
    def failed(self, cid: int, job: Any, message: str, cancelled: bool) -> None:
        self.monkey._on_failed(cid, job.kind, message, cancelled)


class Monkey:
    """Random valid actions on one :class:`explorer.window.MainWindow`.

    ``model_dir``: a model to reopen now and then (File > Open model…). ``work``: a folder for
    photos, exports, saved pictures and models. ``monkeypatch``: pytest's, to answer file dialogs.
    """

    def __init__(self, qtbot: Any, win: Any, rng: random.Random, work: Path, model_dir: Path, monkeypatch: Any, catcher: Catcher) -> None:
        self.qtbot = qtbot
        self.win = win
        self.rng = rng
        self.work = work
        self.model_dir = model_dir
        self.catcher = catcher
        self.log: collections.deque[str] = collections.deque(maxlen=80)
        self.counts: collections.Counter[str] = collections.Counter()
        self.n = 0
        self.photos = write_photos(work / "photos")
        self.export_dir = work / "exports"
        self.export_dir.mkdir()
        self.saved_dir = work / "saved"
        self.saved_dir.mkdir()
        self.broken_model = work / "broken.safetensors"
        self.broken_model.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}")
        # What the next file dialog answers (a user picking a file or cancelling the dialog).
        self.open_answer = ""
        self.save_answer = ""
        monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (self.open_answer, ""))
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (self.save_answer, ""))
        # Commands that failed (not cancelled), and what makes a failure expected: the damaged
        # photo and model files, a few refusals of what the user asked, and jobs asked for before
        # another model was opened, which refer to faces or candidates of the old one ("that face
        # belongs to a model that is no longer open", "that inpainting candidate is no longer available").
        self.failures: list[tuple[int, str, str]] = []
        self.expected: list[str] = [
            str(self.photos["broken"].name), str(self.broken_model.name),
            "GIF cannot play faster than 50 fps",  # the Export box allows 1-120 fps for every format
            "both groups have the same mean encoding",  # the same face tagged as having and lacking it
            "replaced by newer ones",  # "Use this one" while a newer inpainting finished first
            "the face is too small",  # a face box drawn smaller than glowcore.align.MIN_FACE
        ]
        self.stale: set[int] = set()
        self.jobs: collections.Counter[str] = collections.Counter()
        self._relay = _Relay(self)  # the worker's signals, received in the GUI thread
        w = win.worker
        w.command_started.connect(self._relay.started)
        w.command_done.connect(self._relay.done)
        w.command_failed.connect(self._relay.failed)
        self.actions: list[tuple[float, Callable[[], None]]] = [
            (14, self.slider_set), (8, self.slider_drag), (3, self.spin_set), (2, self.star), (2, self.lock),
            (2, self.row_reset), (1, self.reset_all), (1, self.coarse), (2, self.search),
            (5, self.new_face), (3, self.seed), (3, self.temperature), (5, self.undo), (4, self.redo),
            (3, self.history_click), (2, self.history_step),
            (2, self.view_toggle), (2, self.zoom), (1, self.hold_before), (2, self.resize), (1, self.dock_toggle), (3, self.tab),
            (1.5, self.open_photo), (0.5, self.paste_photo), (0.3, self.open_model), (1, self.save_picture), (2, self.photo_tools),
            (4, self.add_keyframe), (0.7, self.keyframe_file), (1, self.remove_keyframe), (0.3, self.clear_keyframes),
            (2, self.morph_params), (3, self.scrub), (1, self.play), (1, self.filmstrip_click), (1.5, self.export),
            (5, self.stroke), (2, self.mask_tools), (1.5, self.inpaint_params), (2, self.inpaint_run), (1, self.use_candidate),
            (1.5, self.tag), (0.7, self.create_direction), (0.4, self.principal), (0.2, self.save_model),
            (2, self.cancel), (6, self.wait_short), (2, self.wait_settled), (1, self.wait_jobs), (3, self.burst),
        ]
        self._weights = [a[0] for a in self.actions]

    # ================================================================== bookkeeping
    def _on_started(self, cid: int, kind: str) -> None:
        self.jobs.update([f"{kind} started"])

    def _on_done(self, cid: int, kind: str, result: Any) -> None:
        self.jobs.update([f"{kind} done"])
        if kind == "open_model":  # (connected after the window: its callbacks left are those still pending)
            self.stale.update(self.win.jobs.pending_ids())

    def _on_failed(self, cid: int, kind: str, message: str, cancelled: bool) -> None:
        self.jobs.update([f"{kind} {'cancelled' if cancelled else 'failed'}"])
        if not cancelled:
            self.failures.append((cid, kind, message))
            self._note(f"{kind} failed: {message}")

    def unexpected_failures(self) -> list[tuple[str, str]]:
        return [
            (k, m) for cid, k, m in self.failures
            if not any(e in m for e in self.expected) and not (cid in self.stale and ("no longer open" in m or "no longer available" in m))
        ]

    def _note(self, text: str) -> None:
        self.log.append(f"{self.n}: {text}")

    def step(self) -> None:
        """One random action (then the event loop runs for a moment)."""
        self.n += 1
        fn = self.rng.choices(self.actions, weights=self._weights)[0][1]
        self.counts[fn.__name__] += 1
        fn()
        self._pace()

    def _pace(self) -> None:
        # Keep the job queue short, as a user waiting for a job would: never more than a few queued.
        if self.win.jobs.pending > 4:
            self.qtbot.waitUntil(lambda: self.win.jobs.pending <= 1, timeout=WAIT_MS)

    def settle(self) -> None:
        """Wait for every job and the newest picture."""
        win = self.win
        self.qtbot.waitUntil(lambda: not win.jobs.pending and win.worker.busy_command is None and win.settled(), timeout=WAIT_MS)

    # ================================================================== helpers
    def _visible_rows(self) -> list[Any]:
        return [r for r in self.win.attributes.rows.values() if not r.isHidden()]

    def _row(self) -> Optional[Any]:
        rows = self._visible_rows()
        return self.rng.choice(rows) if rows else None

    def _amount_ticks(self, slider: Any) -> int:
        r = self.rng.random()
        if r < 0.1:
            return 0
        if r < 0.2:
            return self.rng.choice([slider.minimum(), slider.maximum()])
        return self.rng.randint(slider.minimum(), slider.maximum())

    def _click_item(self, strip: Any, row: int, double: bool = False) -> None:
        item = strip.item(row)
        strip.scrollToItem(item)
        pos = strip.visualItemRect(item).center()
        if double:
            self.qtbot.mouseDClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        else:
            self.qtbot.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=pos)

    def _click_row(self, button: str) -> None:
        """Click ``button`` (star, lock, reset) on a random visible attribute row."""
        row = self._row()
        if row is not None:
            self._note(f"{button} {row.name}")
            getattr(row, button).click()

    def _cancel_when_running(self, kind: str, tries: int, waits: list[int]) -> None:
        """Cancel (button or Esc) as soon as the job bar shows the ``kind`` job running, waiting up
        to ``tries`` times a random one of ``waits`` ms for it."""
        for _ in range(tries):
            self.qtbot.wait(self.rng.choice(waits))
            busy = self.win.worker.busy_command
            if busy is not None and busy[1].kind == kind and self.win.jobbar.job_id == busy[0]:
                self._cancel_now()
                return

    def _show_tab(self, widget: Any) -> None:
        win = self.win
        if not win.tools_dock.isVisible():
            win.tools_dock.toggleViewAction().trigger()
        if win.tools.currentWidget() is not widget:
            bar = win.tools.tabBar()
            self.qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(win.tools.indexOf(widget)).center())

    # ================================================================== attributes
    def slider_set(self) -> None:
        row = self._row()
        if row is None:
            return self.search_clear()
        v = self._amount_ticks(row.slider)
        self._note(f"slider {row.name} = {v}")
        row.slider.setValue(v)

    def slider_drag(self) -> None:
        """Press a slider, move it through several values (events run in between), release."""
        import shiboken6

        row = self._row()
        if row is None:
            return self.search_clear()
        s = row.slider
        n = self.rng.randint(2, 12)
        self._note(f"drag {row.name} x{n}")
        s.setSliderDown(True)
        v = s.value()
        for _ in range(n):
            v = max(s.minimum(), min(s.maximum(), v + self.rng.randint(-40, 40)))
            s.setValue(v)
            if self.rng.random() < 0.5:
                self.qtbot.wait(self.rng.choice([0, 1, 5, 15]))
            if not shiboken6.isValid(s):  # the panel was rebuilt under the mouse (new directions)
                return
        s.setSliderDown(False)

    def spin_set(self) -> None:
        row = self._row()
        if row is None:
            return
        v = round(self.rng.uniform(row.spin.minimum(), row.spin.maximum()), 2)
        self._note(f"spin {row.name} = {v}")
        row.spin.setValue(v)

    def star(self) -> None:
        self._click_row("star")

    def lock(self) -> None:
        self._click_row("lock")

    def row_reset(self) -> None:
        self._click_row("reset")

    def reset_all(self) -> None:
        self._note("reset all")
        if self.rng.random() < 0.5:
            self.win.attributes.reset_all.click()
        else:
            self.win.act_reset.trigger()

    def coarse(self) -> None:
        self._note("coarse levels")
        self.win.attributes.coarse.click()

    def search(self) -> None:
        text = self.rng.choice(["", "", "sm", "a", "hair", "young", "zzz", "pc", "Trait", "MALE"])
        self._note(f"search {text!r}")
        if self.rng.random() < 0.3:
            self.win.act_search.trigger()
        self.win.attributes.search.setText(text)

    def search_clear(self) -> None:
        self._note("search cleared")
        self.win.attributes.search.clear()

    # ================================================================== faces
    def new_face(self) -> None:
        self._note("new face")
        self.win.act_new.trigger()

    def seed(self) -> None:
        v = self.rng.randrange(2000)
        self._note(f"seed {v}")
        self.win.seed_spin.setValue(v)

    def temperature(self) -> None:
        s = self.win.temp_slider
        if not s.isEnabled():
            return
        if self.rng.random() < 0.5:
            v = self.rng.randint(0, 120)
            self._note(f"temperature {v}")
            s.setValue(v)
            return
        self._note("temperature drag")
        s.setSliderDown(True)
        for _ in range(self.rng.randint(2, 8)):
            s.setValue(self.rng.randint(0, 120))
            if self.rng.random() < 0.5:
                self.qtbot.wait(self.rng.choice([0, 2, 10]))
        s.setSliderDown(False)

    def undo(self) -> None:
        for _ in range(self.rng.choice([1, 1, 1, 3, 10])):
            if self.win.act_undo.isEnabled():
                self._note("undo")
                self.win.act_undo.trigger()

    def redo(self) -> None:
        for _ in range(self.rng.choice([1, 1, 2, 5])):
            if self.win.act_redo.isEnabled():
                self._note("redo")
                self.win.act_redo.trigger()

    def history_click(self) -> None:
        h = self.win.history
        if h.count():
            i = self.rng.randrange(h.count())
            self._note(f"history click {i}")
            self._click_item(h, i)

    def history_step(self) -> None:
        self._note("history back/forward")
        (self.win.act_back if self.rng.random() < 0.6 else self.win.act_fwd).trigger()

    # ================================================================== view
    def view_toggle(self) -> None:
        a = self.rng.choice([self.win.act_compare, self.win.act_pixel])
        self._note(f"toggle {a.text()}")
        a.trigger()

    def zoom(self) -> None:
        a = self.rng.choice([self.win.act_zoom_in, self.win.act_zoom_out, self.win.act_fit])
        self._note(a.text())
        a.trigger()

    def hold_before(self) -> None:
        self._note("hold B")
        self.qtbot.keyPress(self.win, Qt.Key.Key_B)
        self.qtbot.wait(self.rng.choice([0, 5, 30]))
        self.qtbot.keyRelease(self.win, Qt.Key.Key_B)

    def resize(self) -> None:
        w, h = self.rng.randint(700, 1900), self.rng.randint(500, 1200)
        self._note(f"resize {w}x{h}")
        self.win.resize(w, h)

    def dock_toggle(self) -> None:
        d = self.rng.choice([self.win.attr_dock, self.win.tools_dock, self.win.plots_dock])
        self._note(f"dock {d.objectName()}")
        d.toggleViewAction().trigger()

    def tab(self) -> None:
        w = self.rng.choice([self.win.interpolate, self.win.inpaint, self.win.directions])
        self._note(f"tab {w.__class__.__name__}")
        self._show_tab(w)

    # ================================================================== files
    def open_photo(self) -> None:
        key = self.rng.choice(["png", "png", "jpg", "big", "broken", "cancel"])
        self.open_answer = "" if key == "cancel" else str(self.photos[key])
        self._note(f"open photo {key}")
        self.win.act_open_photo.trigger()

    def paste_photo(self) -> None:
        img = QImage(str(self.photos["png"]))
        self._note("paste photo")
        QGuiApplication.clipboard().setImage(img)
        self.win.act_paste.trigger()

    def open_model(self) -> None:
        bad = self.rng.random() < 0.3
        self.open_answer = str(self.broken_model if bad else self.model_dir / "config.json")
        self._note(f"open model {'broken' if bad else 'tiny'}")
        self.win.act_open_model.trigger()

    def save_picture(self) -> None:
        self.save_answer = str(self.saved_dir / f"face{self.n}.png")
        a = self.rng.choice([self.win.act_save, self.win.act_save_big, self.win.act_copy])
        self._note(a.text())
        a.trigger()

    def photo_tools(self) -> None:
        """With a photo shown: drag a face box on it (mouse), the centre square, save it, save the
        face, zoom or close it."""
        win = self.win
        panel, view = win.photo_panel, win.photo_panel.view
        if not panel.isVisible():
            return
        what = self.rng.choice(["box", "centre", "save", "save", "face", "zoom", "close"])
        self._note(f"photo {what}")
        if what == "box":
            panel.draw_box.click()
            r = view.image_rect()
            pts = [QPoint(int(r.x() + self.rng.random() * r.width()), int(r.y() + self.rng.random() * r.height())) for _ in range(2)]
            self.qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=pts[0])
            self.qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=pts[1])
            if panel.draw_box.isChecked():  # too small a box: nothing asked
                panel.draw_box.click()
        elif what == "centre":
            panel.centre.click()
        elif what in ("save", "face"):
            self.save_answer = str(self.saved_dir / f"photo{self.n}.{self.rng.choice(['png', 'jpg', 'webp'])}")
            (panel.save if what == "save" else panel.save_face).click()
        elif what == "zoom":
            view.set_zoom(view.zoom * self.rng.choice([0.5, 2.0, 4.0]))
        else:
            panel.close_btn.click()

    # ================================================================== interpolation
    def add_keyframe(self) -> None:
        self._note("add keyframe")
        if self.rng.random() < 0.5:
            self.win.act_keyframe.trigger()
        else:
            self._show_tab(self.win.interpolate)
            self.win.interpolate.add_current.click()

    def keyframe_file(self) -> None:
        self._show_tab(self.win.interpolate)
        self.open_answer = str(self.photos[self.rng.choice(["png", "jpg"])])
        self._note("keyframe from file")
        self.win.interpolate.add_file.click()

    def remove_keyframe(self) -> None:
        k = self.win.interpolate.keyframes
        if k.count():
            self._show_tab(self.win.interpolate)
            i = self.rng.randrange(k.count())
            self._note(f"remove keyframe {i}")
            self._click_item(k, i)
            self.win.interpolate.remove.click()

    def clear_keyframes(self) -> None:
        self._show_tab(self.win.interpolate)
        self._note("clear keyframes")
        self.win.interpolate.clear.click()

    def morph_params(self) -> None:
        p = self.win.interpolate
        what = self.rng.choice(["frames", "mode", "ease", "loop", "pingpong", "fps", "scale", "filter", "format"])
        self._note(f"morph {what}")
        if what == "frames":
            p.frames.setValue(self.rng.randint(2, 30))
        elif what in ("mode", "ease", "filter", "format"):
            box = getattr(p, what)
            box.setCurrentIndex(self.rng.randrange(box.count()))
        elif what in ("loop", "pingpong"):
            getattr(p, what).click()
        elif what == "fps":
            p.fps.setValue(self.rng.randint(1, 60))
        else:
            p.scale.setValue(self.rng.randint(1, 3))

    def scrub(self) -> None:
        s = self.win.interpolate.scrub
        if s.isEnabled():
            v = self.rng.randint(s.minimum(), s.maximum())
            self._note(f"scrub {v}")
            s.setValue(v)

    def play(self) -> None:
        p = self.win.interpolate
        if p.play.isEnabled():
            self._note("play/pause")
            if self.rng.random() < 0.5:
                self._show_tab(p)
                self.win.act_play.trigger()
            else:
                p.play.click()

    def filmstrip_click(self) -> None:
        f = self.win.interpolate.filmstrip
        if f.count():
            self._show_tab(self.win.interpolate)
            i = self.rng.randrange(f.count())
            self._note(f"filmstrip {i}")
            self._click_item(f, i)

    def export(self) -> None:
        p = self.win.interpolate
        if not p.export.isEnabled():
            return
        self._show_tab(p)
        if p.frames.value() > 30:
            p.frames.setValue(self.rng.randint(2, 30))
        if p.scale.value() > 3:
            p.scale.setValue(self.rng.randint(1, 3))
        fmt = p.format.currentText()
        self.save_answer = str(self.export_dir / f"morph{self.n}.{fmt}")
        cancel = self.rng.random() < 0.7
        self._note(f"export {fmt} {p.frames.value()} frames x{p.scale.value()}{' + cancel' if cancel else ''}")
        if self.rng.random() < 0.5:
            p.export.click()
        else:
            self.win.act_export.trigger()
        if cancel:
            self._cancel_when_running("export", self.rng.randint(1, 20), [0, 1, 3, 10])

    # ================================================================== inpainting
    def stroke(self) -> None:
        """A mouse drag on the canvas: paints the mask on the Inpaint tab, else pans or moves the divider."""
        c = self.win.canvas
        img = c.image()
        if img is None:
            return
        if self.rng.random() < 0.5:
            self._show_tab(self.win.inpaint)
        w, h = img.width(), img.height()
        pts = [c.from_image(QPointF(self.rng.uniform(0, w), self.rng.uniform(0, h))) for _ in range(self.rng.randint(1, 5))]
        self._note(f"stroke x{len(pts)} (mask mode {c.mask_mode})")
        self.qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=pts[0])
        for p in pts[1:]:
            self.qtbot.mouseMove(c, pos=p)
        self.qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=pts[-1])

    def mask_tools(self) -> None:
        p = self.win.inpaint
        what = self.rng.choice(["brush", "eraser", "clear", "invert", "overlay", "size", "size"])
        self._note(f"mask {what}")
        if what == "size":
            p.size.setValue(self.rng.randint(1, 12))
        else:
            getattr(p, what).click()

    def inpaint_params(self) -> None:
        p = self.win.inpaint
        what = self.rng.choice(["candidates", "steps", "temperature", "seed"])
        self._note(f"inpaint {what}")
        if what == "candidates":
            p.candidates.setValue(self.rng.randint(1, 3))
        elif what == "steps":
            p.steps.setValue(self.rng.randint(1, 4))
        elif what == "temperature":
            p.temperature.setValue(round(self.rng.uniform(0, 1.2), 2))
        else:
            p.seed.setValue(self.rng.randrange(100))

    def inpaint_run(self) -> None:
        p = self.win.inpaint
        if p.steps.value() > 4:  # keep the CI run short: a few optimisation steps
            p.steps.setValue(self.rng.randint(1, 4))
        if p.candidates.value() > 3:
            p.candidates.setValue(self.rng.randint(1, 3))
        if not p.run.isEnabled():
            return
        cancel = self.rng.random() < 0.4
        self._note(f"fill in{' + cancel' if cancel else ''}")
        self._show_tab(p)
        if self.rng.random() < 0.5:
            p.run.click()
        else:
            self.win.act_inpaint.trigger()
        if cancel:
            self._cancel_when_running("inpaint", self.rng.randint(1, 10), [0, 2, 10])

    def use_candidate(self) -> None:
        p = self.win.inpaint
        if p.results.count():
            i = self.rng.randrange(p.results.count())
            self._note(f"use candidate {i}")
            self._show_tab(p)
            if self.rng.random() < 0.5:
                self._click_item(p.results, i)
                if p.use.isEnabled():
                    p.use.click()
            else:
                self._click_item(p.results, i, double=True)

    # ================================================================== directions
    def tag(self) -> None:
        d = self.win.directions
        self._show_tab(d)
        if not d.name.text():
            d.name.setText(self.rng.choice(["Trait", "Trait 2", "Smiling"]))
        positive = self.rng.random() < 0.5
        self._note(f"tag {'has' if positive else 'lacks'}")
        (d.has if positive else d.lacks).click()

    def create_direction(self) -> None:
        d = self.win.directions
        self._show_tab(d)
        if self.rng.random() < 0.3:
            d.name.setText(self.rng.choice(["Trait", "Trait 2", "Smiling", "  "]))
        if self.rng.random() < 0.15:
            self._note("clear tags")
            d.clear.click()
        elif d.create.isEnabled():
            self._note(f"create slider {d.name.text()!r}")
            d.create.click()

    def principal(self) -> None:
        d = self.win.directions
        self._show_tab(d)
        d.k.setValue(self.rng.randint(1, 3))
        d.samples.setValue(self.rng.choice([16, 32]))
        self._note(f"principal k={d.k.value()} samples={d.samples.value()}")
        d.compute.click()

    def save_model(self) -> None:
        self._show_tab(self.win.directions)
        self.save_answer = str(self.saved_dir / "model.safetensors")
        self._note("save model")
        self.win.directions.save.click()

    # ================================================================== jobs and waiting
    def _cancel_now(self) -> None:
        if self.rng.random() < 0.5:
            self.win.jobbar.cancel.click()
        else:
            self.win.act_cancel.trigger()

    def cancel(self) -> None:
        if self.win.jobbar.job_id is not None:
            self._note("cancel job")
            self._cancel_now()

    def wait_short(self) -> None:
        self.qtbot.wait(self.rng.choice([1, 5, 10, 20, 50]))

    def wait_settled(self) -> None:
        self._note("wait for the picture")
        wait_settled(self.qtbot, self.win)

    def wait_jobs(self) -> None:
        self._note("wait for the jobs")
        self.settle()

    def burst(self) -> None:
        """Several quick actions with no event processing in between (fast typing or clicking)."""
        quick = [self.slider_set, self.spin_set, self.new_face, self.seed, self.undo, self.redo, self._temperature_set, self.scrub]
        n = self.rng.randint(3, 15)
        self._note(f"burst of {n}")
        for _ in range(n):
            self.rng.choice(quick)()

    def _temperature_set(self) -> None:
        """The temperature slider set to a value at once (no drag: a burst processes no events)."""
        if self.win.temp_slider.isEnabled():
            self.win.temp_slider.setValue(self.rng.randint(0, 120))

    # ================================================================== the run
    def warm_up(self) -> None:
        """Every kind of job once, to completion, so that lazily loaded code (video encoders, face
        detection, autograd, linear algebra) is in memory before the start RSS is taken."""
        win, p = self.win, self.win.interpolate
        self.new_face()
        self.add_keyframe()
        self.settle()
        self.seed()
        self.settle()
        self.add_keyframe()
        self.settle()
        p.frames.setValue(6)
        for i in range(p.format.count()):
            p.format.setCurrentIndex(i)
            self.save_answer = str(self.export_dir / f"warmup{i}.{p.format.currentText()}")
            p.export.click()
            self.settle()
        self._show_tab(win.inpaint)
        self.stroke()
        win.inpaint.steps.setValue(2)
        win.inpaint.run.click()
        self.settle()
        win.inpaint.use.click()
        self.settle()
        self.tag()
        self.settle()
        self.new_face()
        self.settle()
        self.tag()
        self.settle()
        self.principal()
        for fn in (self.open_photo, self.paste_photo, self.save_picture, self.keyframe_file, self.save_model, self.open_model):
            fn()
            self.settle()
        self.log.append("(warm-up done)")

    def run(self, actions: int, warmup: int, progress: Optional[Callable[[str], None]] = None) -> dict:
        """The warm-up, ``warmup`` random actions, then the RSS at the start, and random actions up
        to ``actions`` in all. Returns the figures."""
        t0 = time.monotonic()
        rss_start = None
        series: list[tuple[int, float]] = []
        self.warm_up()
        for i in range(actions):
            if i == warmup:
                self.settle()
                gc.collect()
                rss_start = rss_mb()
                t_measured = time.monotonic()
            self.step()
            if self.catcher.exceptions or self.catcher.worker_logged:
                break  # stop at the first exception: the log shows what led to it
            if (i + 1) % 1000 == 0:
                series.append((i + 1, round(rss_mb(), 1)))
                if progress is not None:
                    progress(f"{i + 1} actions, {time.monotonic() - t0:.0f} s, RSS {series[-1][1]:.0f} MB")
        self.settle()
        gc.collect()
        if rss_start is None:
            rss_start, t_measured = rss_mb(), time.monotonic()
        eng = self.win.worker._engine
        return {
            "actions": self.n,
            "warmup_actions": warmup,
            "seconds": round(time.monotonic() - t0, 1),
            "seconds_after_warmup": round(time.monotonic() - t_measured, 1),
            "rss_start_mb": round(rss_start, 1),
            "rss_end_mb": round(rss_mb(), 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "renders": self.win.worker.render_count,
            "previews": self.win.worker.preview_count,
            "latents_held": len(eng._latents) if eng is not None else 0,
            "jobs": dict(sorted(self.jobs.items())),
            "expected_failures": len(self.failures) - len(self.unexpected_failures()),
            "action_counts": dict(sorted(self.counts.items())),
            "rss_every_1000_actions": series,
        }
