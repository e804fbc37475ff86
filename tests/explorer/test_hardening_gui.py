"""GUI hardening (issue #7): a monkey test of thousands of random valid actions on the real window,
and closing the window at any moment (mid-render, mid-export, mid-inpaint, mid-fitting, right after
opening a photo or at start-up).

The monkey's length and seed come from the environment, so a failure can be replayed and a long
run made (``benchmarks/monkey_long.py``)::

    GLOW_MONKEY_ACTIONS=30000 GLOW_MONKEY_SEED=5 python -m pytest -q -s tests/explorer/test_hardening_gui.py -k monkey

The seed fixes the sequence of choices; what a choice finds on screen still depends on how fast
the worker answered, so a replay is close to, not exactly, the failing run. No timing assertions:
the close-to-finished times are printed (``-s``) and recorded in docs/hardening.md; the tests only
require the worker to finish within a generous 10 s.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QFileDialog

from explorer.worker import ModelWorker

from .conftest import WAIT_MS, wait_settled
from .monkey import Catcher, Monkey, write_photos

ACTIONS = int(os.environ.get("GLOW_MONKEY_ACTIONS", "2000"))
SEED = int(os.environ.get("GLOW_MONKEY_SEED", "20261128"))
RSS_BOUND_MB = float(os.environ.get("GLOW_MONKEY_RSS_MB", "200"))
REPORT = os.environ.get("GLOW_MONKEY_REPORT")  # JSON figures, for benchmarks/monkey_long.py
CLOSE_REPEATS = int(os.environ.get("GLOW_CLOSE_REPEATS", "1"))  # each closing moment, this many times
CLOSE_WAIT_MS = 10_000  # the worker must finish within this after close() (the issue asks 2 s; measured, not asserted)
ROOT = Path(__file__).resolve().parents[2]

CLOSE_TIMES: dict[str, list[float]] = {}


def _report(key: str, value: object) -> None:
    if REPORT:
        p = Path(REPORT)
        data = json.loads(p.read_text()) if p.is_file() else {}
        data[key] = value
        p.write_text(json.dumps(data, indent=2))


@pytest.fixture
def catcher(monkeypatch):
    """Records uncaught exceptions, exceptions the worker logged as unexpected, and Qt messages."""
    c = Catcher()
    original = ModelWorker._log

    def log(exc: BaseException) -> None:
        c.record_worker_log(exc)
        original(exc)

    monkeypatch.setattr(ModelWorker, "_log", staticmethod(log))
    with c:
        yield c


# ====================================================================== the monkey
def test_monkey_thousands_of_random_actions(qtbot, make_window, tiny_model, tmp_path, monkeypatch, catcher):
    print(f"\nmonkey: {ACTIONS} actions, seed {SEED} (replay: GLOW_MONKEY_SEED={SEED} GLOW_MONKEY_ACTIONS={ACTIONS})")
    random.seed(SEED)  # the window's own random choices (new face seeds) too
    win = make_window(tiny_model, seed=SEED % 1000)
    monkey = Monkey(qtbot, win, random.Random(SEED), tmp_path, tiny_model, monkeypatch, catcher)
    figures = monkey.run(ACTIONS, warmup=max(50, ACTIONS // 10), progress=lambda s: print("  " + s, flush=True))

    def explain() -> str:
        return "\n".join([f"seed {SEED}; the last actions:", *monkey.log])

    assert not catcher.exceptions and not catcher.worker_logged, "\n".join(catcher.problems()) + "\n" + explain()
    assert win.host.thread.isRunning(), "the worker thread died\n" + explain()
    # Still responsive: a slider move gives a new picture (a generous wait, not a timing check).
    win.attributes.search.clear()
    if not win.attributes.rows:
        pytest.fail("no attribute sliders left\n" + explain())
    row = next(iter(win.attributes.rows.values()))
    stamp = win.canvas.stamp()
    row.slider.setValue(row.slider.maximum() if row.slider.value() != row.slider.maximum() else row.slider.minimum())
    qtbot.waitUntil(lambda: win.settled() and win.canvas.stamp() > stamp, timeout=WAIT_MS)
    # Nothing half-written where exports and saves went.
    leftovers = [p.name for d in (monkey.export_dir, monkey.saved_dir) for p in d.iterdir() if p.name.startswith(".")]
    assert leftovers == [], f"temporary files left behind: {leftovers}"
    from glowcore.ops.video import probe_video

    videos = sorted(monkey.export_dir.iterdir())
    for v in videos:
        assert probe_video(v).frames >= 1, f"{v.name} is not a complete video"  # (GIF/WebP merge equal frames)

    figures.update(seed=SEED, videos_written=len(videos), exceptions=len(catcher.exceptions) + len(catcher.worker_logged))
    growth = figures["rss_end_mb"] - figures["rss_start_mb"]
    print(
        f"monkey: {figures['actions']} actions in {figures['seconds']} s; RSS {figures['rss_start_mb']} MB after "
        f"{figures['warmup_actions']} warm-up actions -> {figures['rss_end_mb']} MB at the end ({growth:+.1f} MB), "
        f"peak {figures['peak_rss_mb']} MB; {figures['renders']} renders, {figures['previews']} previews, "
        f"{figures['latents_held']} latents held by the engine, {len(videos)} videos written"
    )
    print(f"monkey jobs: {figures['jobs']}")
    print(f"monkey actions: {figures['action_counts']}")
    if catcher.qt_messages:
        print(f"Qt messages (benign): {sorted(set(catcher.qt_messages))[:10]}")
    _report("monkey", figures)
    assert not catcher.bad_qt_messages(), "\n".join(catcher.problems()) + "\n" + explain()
    unexpected = monkey.unexpected_failures()
    assert not unexpected, f"jobs or renders failed: {unexpected[:10]}\n" + explain()
    assert win.renderer.errors == [], f"renders failed: {win.renderer.errors[:5]}"
    assert growth < RSS_BOUND_MB, f"memory grew by {growth:.0f} MB (bound {RSS_BOUND_MB:.0f} MB)"


# ====================================================================== closing at any moment
def close_and_time(qtbot, win, moment: str) -> None:
    """Close the window as a user does; wait (generously) for the worker thread to end; record the time taken."""
    from explorer.window import LINGERING

    t0 = time.perf_counter()
    win.close()
    qtbot.waitUntil(lambda: win.host.finished, timeout=CLOSE_WAIT_MS)
    dt = time.perf_counter() - t0
    qtbot.wait(50)  # results queued to the closed window arrive now: they must not raise
    assert win.host not in LINGERING  # (finished: waited for above)
    assert not win.isVisible()
    CLOSE_TIMES.setdefault(moment, []).append(dt)
    print(f"\nclose {moment}: worker finished {dt * 1000:.0f} ms after close()")
    _report("close", CLOSE_TIMES)


def _clean(catcher: Catcher) -> None:
    assert not catcher.problems(), "\n".join(catcher.problems())


def _two_keyframes(qtbot, win) -> None:
    win.act_keyframe.trigger()
    qtbot.waitUntil(lambda: win.interpolate.keyframes.count() == 1, timeout=WAIT_MS)
    win.seed_spin.setValue(win.seed_spin.value() + 1)
    wait_settled(qtbot, win)
    win.act_keyframe.trigger()
    qtbot.waitUntil(lambda: win.interpolate.keyframes.count() == 2, timeout=WAIT_MS)


def _progress_counter(win) -> list:
    seen: list = []
    win.worker.progress.connect(lambda cid, done, total, msg: seen.append((cid, done, total)))
    return seen


REPEATS = range(CLOSE_REPEATS)


@pytest.mark.parametrize("rep", REPEATS)
def test_close_mid_render_during_a_slider_drag(qtbot, make_window, tiny_model, catcher, rep):
    from explorer import engine as engine_mod

    rendering = threading.Event()

    class SlowEngine(engine_mod.Engine):
        """Renders take 150 ms, so that the close lands inside one."""

        def render(self, spec, with_before=False, cancel=None):
            rendering.set()
            time.sleep(0.15)
            return super().render(spec, with_before, cancel)

    win = make_window(tiny_model, engine_factory=lambda: SlowEngine("cpu", 1))
    rng = random.Random(SEED + rep)
    slider = win.attributes.row("Young").slider
    slider.setSliderDown(True)  # the user holds the slider ...
    for _ in range(rng.randint(1, 6)):
        rendering.clear()
        slider.setValue(rng.randint(slider.minimum(), slider.maximum()))
        qtbot.wait(rng.choice([0, 5, 20]))
    qtbot.waitUntil(rendering.is_set, timeout=WAIT_MS)
    close_and_time(qtbot, win, "mid-render (slider held)")  # ... and closes the window (Ctrl+Q or the title bar)
    _clean(catcher)


@pytest.mark.parametrize("rep", REPEATS)
def test_close_mid_export_keeps_the_existing_file_and_leaves_no_temporary(qtbot, make_window, tiny_model, tmp_path, monkeypatch, catcher, rep):
    win = make_window(tiny_model)
    _two_keyframes(qtbot, win)
    rng = random.Random(SEED + rep)
    p = win.interpolate
    p.frames.setValue(2000)
    p.scale.setValue(8)
    p.format.setCurrentIndex(rep % p.format.count())
    out_dir = tmp_path / "videos"
    out_dir.mkdir()
    target = out_dir / f"morph.{p.format.currentText()}"
    target.write_bytes(b"an earlier export the user keeps")
    other = out_dir / "notes.txt"
    other.write_text("untouched")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    seen = _progress_counter(win)
    p.export.click()
    need = rng.randint(1, 5)
    qtbot.waitUntil(lambda: len(seen) >= need, timeout=WAIT_MS)
    assert win.worker.busy_command is not None and win.worker.busy_command[1].kind == "export"
    close_and_time(qtbot, win, "mid-export")
    assert sorted(x.name for x in out_dir.iterdir()) == ["morph." + p.format.currentText(), "notes.txt"], "a partial or temporary file was left"
    assert target.read_bytes() == b"an earlier export the user keeps"
    assert other.read_text() == "untouched"
    _clean(catcher)


@pytest.mark.parametrize("rep", REPEATS)
def test_close_mid_inpaint_right_after_fill_in_or_during_it(qtbot, make_window, tiny_model, catcher, rep):
    """The existing test_jobs test closes once inpainting reports progress; here the mask is painted
    with the mouse and the window closes 0-3 progress reports after Fill in (0: the job may not
    even have started)."""
    win = make_window(tiny_model)
    win.tools_dock.show()
    win.tools.setCurrentWidget(win.inpaint)
    c = win.canvas
    pts = [c.from_image(QPointF(x, y)) for x, y in ((3.5, 4.5), (12.5, 10.5))]
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=pts[0])
    qtbot.mouseMove(c, pos=pts[1])
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=pts[1])
    assert c.mask_array().any()
    win.inpaint.steps.setValue(5000)
    seen = _progress_counter(win)
    need = (rep + SEED) % 4
    win.inpaint.run.click()
    if need:
        qtbot.waitUntil(lambda: len(seen) >= need, timeout=WAIT_MS)
    close_and_time(qtbot, win, f"mid-inpaint ({need} progress reports)")
    _clean(catcher)


@pytest.mark.parametrize("rep", REPEATS)
def test_close_mid_direction_fitting(qtbot, make_window, tiny_model, catcher, rep):
    """Principal directions (a long job with progress) and a slider from tagged faces (a short one)."""
    win = make_window(tiny_model)
    d = win.directions
    win.tools_dock.show()
    win.tools.setCurrentWidget(d)
    d.k.setValue(8)
    d.samples.setValue(8192)
    seen = _progress_counter(win)
    d.compute.click()
    qtbot.waitUntil(lambda: len(seen) >= 1 + rep % 3, timeout=WAIT_MS)
    assert win.worker.busy_command is not None and win.worker.busy_command[1].kind == "principal"
    close_and_time(qtbot, win, "mid-principal-directions")
    _clean(catcher)

    win = make_window(tiny_model)
    d = win.directions
    d.name.setText("Trait")
    d.has.click()
    qtbot.waitUntil(lambda: d.positives.count() == 1, timeout=WAIT_MS)
    win.act_new.trigger()
    wait_settled(qtbot, win)
    d.lacks.click()
    qtbot.waitUntil(lambda: d.create.isEnabled(), timeout=WAIT_MS)
    d.create.click()  # closed at once: the fit is queued or running
    close_and_time(qtbot, win, "right after Create slider")
    _clean(catcher)


@pytest.mark.parametrize("rep", REPEATS)
def test_close_right_after_opening_a_photo(qtbot, make_window, tiny_model, tmp_path, monkeypatch, catcher, rep):
    photos = write_photos(tmp_path / "photos")
    win = make_window(tiny_model)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(photos["big" if rep % 2 == 0 else "png"]), ""))
    win.act_open_photo.trigger()
    close_and_time(qtbot, win, "right after Open photo")
    _clean(catcher)


def test_close_while_the_model_is_opening(qtbot, make_window, tiny_model, catcher):
    win = make_window(tiny_model, wait=False)
    qtbot.waitUntil(lambda: win.worker.busy_command is not None or win.model_info is not None, timeout=WAIT_MS)
    close_and_time(qtbot, win, "while the model opens (start-up)")
    _clean(catcher)


def test_close_mid_model_save_keeps_a_loadable_model(qtbot, make_window, tiny_model, tmp_path, monkeypatch, catcher):
    """Saving is quick and not cancellable: closing waits for it; the file is then complete."""
    import glowcore

    win = make_window(tiny_model)
    target = tmp_path / "edited.safetensors"
    glowcore.save_model(glowcore.load_model(tiny_model, device="cpu"), target)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    win.directions.save.click()
    close_and_time(qtbot, win, "right after Save model")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    m = glowcore.load_model(target, device="cpu")  # complete: the old file or the new one
    assert set(m.directions) == set(glowcore.load_model(tiny_model, device="cpu").directions)
    _clean(catcher)


# ====================================================================== the whole application
CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from PySide6.QtCore import QSettings, QTimer
    from explorer.app import make_app
    from explorer.protocol import ExportParams
    from explorer.window import LINGERING, MainWindow

    model, out, moment, settings_path = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    app = make_app()
    win = MainWindow(model, settings=QSettings(settings_path, QSettings.Format.IniFormat), seed=3, threads=1)
    seen = []
    win.worker.progress.connect(lambda *a: seen.append(a))
    state = {"step": 0, "t_close": None, "t_closed": None}

    def close():
        state["t_close"] = time.time()
        win.close()
        state["t_closed"] = time.time()

    def tick():  # a small script of user actions, polled
        s = state["step"]
        if state["t_close"] is not None:
            return
        if s == 0 and win.canvas.image() is not None and win.settled():
            win.act_keyframe.trigger(); state["step"] = 1
        elif s == 1 and win.interpolate.keyframes.count() == 1:
            win.seed_spin.setValue(4); state["step"] = 2
        elif s == 2 and win.settled():
            win.act_keyframe.trigger(); state["step"] = 3
        elif s == 3 and win.interpolate.keyframes.count() == 2:
            seen.clear()  # (opening the model reported progress too)
            if moment == "export":
                win.interpolate.frames.setValue(2000)
                win.morph_ctl.export_video(str(out), ExportParams(fps=24, scale=8))
            else:
                win.inpaint.steps.setValue(5000)
                import numpy as np
                win.tools.setCurrentWidget(win.inpaint)
                win.canvas.set_mask_array(np.eye(16, dtype=bool))
                win.inpaint.run.click()
            state["step"] = 4
        elif s == 4 and len(seen) >= 2:
            close()

    timer = QTimer(); timer.timeout.connect(tick); timer.start(10)
    win.show()
    code = app.exec()
    t_loop = time.time()
    finished = win.host.finished
    print(json.dumps({**state, "t_loop_end": t_loop, "finished": finished, "lingering": len(LINGERING)}), flush=True)
    sys.exit(code)
    """
)


@pytest.mark.parametrize("rep", REPEATS)
@pytest.mark.parametrize("moment", ["export", "inpaint"])
def test_the_application_exits_cleanly_when_closed_mid_job(tiny_model, tmp_path, moment, rep):
    """A separate process runs the real event loop; the window is closed mid-job; the process must
    end by itself (app.exec() returns, the interpreter exits) with no traceback and no Qt complaint
    about a running thread, and leave no file behind."""
    out = tmp_path / "videos" / "morph.mp4"
    out.parent.mkdir()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tiny_model), str(out), moment, str(tmp_path / "settings.ini")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(tmp_path),
    )
    try:
        stdout, stderr = proc.communicate(timeout=WAIT_MS / 1000 * 2)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        pytest.fail(f"the application did not exit\n{stdout}\n{stderr}")
    t_end = time.time()
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{stdout}\n{stderr}"
    assert "Traceback" not in stderr and "QThread" not in stderr, stderr
    info = json.loads(stdout.strip().splitlines()[-1])
    assert info["t_close"] is not None and info["finished"] and info["lingering"] == 0
    assert list(out.parent.iterdir()) == []
    close_s, loop_s, exit_s = (info["t_closed"] - info["t_close"], info["t_loop_end"] - info["t_close"], t_end - info["t_close"])
    print(
        f"\nclose mid-{moment} (whole app): close() returned after {close_s * 1000:.0f} ms, the event loop ended after "
        f"{loop_s * 1000:.0f} ms, the process was gone after {exit_s * 1000:.0f} ms"
    )
    CLOSE_TIMES.setdefault(f"app mid-{moment}: close() returned", []).append(close_s)
    CLOSE_TIMES.setdefault(f"app mid-{moment}: loop end", []).append(loop_s)
    CLOSE_TIMES.setdefault(f"app mid-{moment}: process exit", []).append(exit_s)
    _report("close", CLOSE_TIMES)


# ====================================================================== found by the monkey
LONG_SESSION = textwrap.dedent(
    """
    import os, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    import explorer  # the work-around, as the app applies it
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QApplication, QWidget

    class Source(QObject):
        changed = Signal(object)

    app = QApplication([])
    w, s = QWidget(), Source()
    s.changed.connect(lambda v: None)
    start = sys.getrefcount(None) + sys.getrefcount(True)
    for i in range(100_000):  # more calls than None and True have references in a fresh process
        w.setEnabled(True)  # a Qt method without a result (returns None)
        s.changed.emit(i)  # Signal.emit() (returns True)
    print("survived", start)
    """
)


def test_a_long_session_of_qt_calls_does_not_free_none_or_true():
    """PySide6 6.12.0 on Python < 3.12 loses a reference to None on every Qt call without a result
    and to True on every signal emit: the monkey test crashed with "Fatal Python error:
    none_dealloc" after ~2,000 actions. Importing explorer must make that harmless."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", LONG_SESSION], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and "survived" in out.stdout, f"exit status {out.returncode}\n{out.stderr[-2000:]}"


def test_requests_made_while_another_model_opens_fail_silently(qtbot, make_window, tiny_model, tmp_path, monkeypatch, catcher):
    """A slider moved and the morph scrubbed while File > Open model… loads: those requests name
    faces of the old model and fail in the worker; the window used to show "Could not render: that
    face belongs to a model that is no longer open" over the newly opened model."""
    photos = write_photos(tmp_path / "photos")
    win = make_window(tiny_model)
    _two_keyframes(qtbot, win)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(photos["png"]), ""))
    win.act_open_photo.trigger()
    qtbot.waitUntil(lambda: win.state.face.kind == "latent", timeout=WAIT_MS)
    wait_settled(qtbot, win)
    failed = []
    win.worker.render_failed.connect(lambda stamp, msg: failed.append(msg))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tiny_model / "config.json"), ""))
    win.act_open_model.trigger()
    win.attributes.row("Smiling").slider.setValue(120)  # the photo's face, queued behind the model
    win.interpolate.scrub.setValue(3)  # a morph frame between the old keyframes
    qtbot.waitUntil(lambda: win.state.face is not None and win.state.face.kind == "seed", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(failed) >= 2, timeout=WAIT_MS)  # both did fail in the worker ...
    wait_settled(qtbot, win)
    qtbot.wait(50)
    assert win.renderer.errors == [] and win.message.text() == ""  # ... and the window said nothing
    _clean(catcher)


def test_cancelling_open_model_at_its_last_step_keeps_the_open_model(qtbot, make_window, tiny_model, tmp_path, monkeypatch, catcher):
    """Esc while another model opens, at its very last progress step: the engine used to have
    switched to the new model (and forgotten every face of the old one) before that step, while
    the window, told "cancelled", kept the old model's faces, keyframes and candidates: each later
    render of them failed with "that face belongs to a model that is no longer open"."""
    photos = write_photos(tmp_path / "photos")
    win = make_window(tiny_model)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(photos["png"]), ""))
    win.act_open_photo.trigger()
    qtbot.waitUntil(lambda: win.state.face.kind == "latent", timeout=WAIT_MS)
    wait_settled(qtbot, win)
    info = win.model_info
    # Cancel at the last step, exactly: this runs in the worker thread as it reports (2, 2).
    win.worker.progress.connect(lambda cid, done, total, msg: win.worker.cancel(cid) if (done, total) == (2, 2) else None)
    cancelled = []
    win.worker.command_failed.connect(lambda cid, job, msg, c: cancelled.append((job.kind, c)))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tiny_model / "config.json"), ""))
    win.act_open_model.trigger()
    qtbot.waitUntil(lambda: cancelled == [("open_model", True)], timeout=WAIT_MS)
    assert win.model_info is info and win.state.face.kind == "latent"
    stamp = win.canvas.stamp()
    win.attributes.row("Smiling").slider.setValue(150)  # the photo's face, on the model still open
    qtbot.waitUntil(lambda: bool(win.renderer.errors) or (win.settled() and win.canvas.stamp() > stamp), timeout=WAIT_MS)
    assert win.renderer.errors == []
    _clean(catcher)


def test_the_inpaint_tab_offers_only_temperatures_inpainting_accepts(qtbot, make_window, tiny_model, catcher):
    """The temperature box went down to 0.00, which inpainting refuses ("temperature must be a
    positive number, got 0.0")."""
    win = make_window(tiny_model)
    win.tools_dock.show()
    win.tools.setCurrentWidget(win.inpaint)
    win.canvas.set_mask_array(np.eye(16, dtype=bool))
    p = win.inpaint
    p.temperature.setValue(0.0)  # what typing 0 or holding the down arrow does
    assert p.temperature.value() > 0
    p.steps.setValue(1)
    p.candidates.setValue(2)
    p.run.click()
    qtbot.waitUntil(lambda: p.results.count() == 2 or win.message.text() != "", timeout=WAIT_MS)
    assert p.results.count() == 2, win.message.text()
    _clean(catcher)


def test_using_a_candidate_while_newer_ones_are_computed_never_adopts_another_picture(qtbot, make_window, tiny_model, catcher):
    """"Use this one" on a candidate while a newer inpainting runs: the pick waits behind that job,
    which replaces the engine's candidates; it used to adopt the *new* candidate with the same
    number (a face the user never chose) or fail with "no longer available"."""
    from explorer.qimage import qimage_to_array

    from .conftest import canvas_array

    win = make_window(tiny_model)
    win.tools_dock.show()
    win.tools.setCurrentWidget(win.inpaint)
    p = win.inpaint
    mask = np.zeros((16, 16), dtype=bool)
    mask[4:9, 3:12] = True
    win.canvas.set_mask_array(mask)
    p.steps.setValue(2)
    p.candidates.setValue(2)
    p.run.click()
    qtbot.waitUntil(lambda: p.results.count() == 2, timeout=WAIT_MS)
    picked = qimage_to_array(p.candidate_image(0))
    first_results = p.results.images()
    mask[9:14, 2:14] = True  # a larger area, filled again: different candidates
    win.canvas.set_mask_array(mask)
    p.steps.setValue(3)
    p.run.click()
    p.results.setCurrentRow(0)
    p.use.click()  # candidate 1 of the set on screen, while the new set is computed
    qtbot.waitUntil(lambda: p.results.images() != first_results and not win.jobs.pending, timeout=WAIT_MS)
    wait_settled(qtbot, win)
    if win.state.face.kind == "latent":  # adopted: it must be the picture that was picked
        assert np.abs(canvas_array(win).astype(int) - picked.astype(int)).max() <= 1
    else:  # refused, with a message saying why
        assert "replaced by newer ones" in win.message.text()
    assert not np.array_equal(qimage_to_array(p.candidate_image(0)), picked)  # (the test's premise)
    _clean(catcher)


# ====================================================================== faults in the model worker
FAULT_METHODS = (
    "render", "preview", "filmstrip", "analyse", "materialize", "open_photo", "adopt_candidate",
    "inpaint", "export", "fit_direction", "principal", "save_model",
)


@pytest.mark.parametrize("error", [RuntimeError, MemoryError])
def test_the_worker_raising_in_any_request_leaves_the_window_usable(qtbot, make_window, tiny_model, tmp_path, monkeypatch, catcher, error):
    """Every engine entry point the window reaches raises (an unexpected RuntimeError; running out
    of memory): each failure shows as a message (renders and jobs) or is skipped (the analysis
    plots), nothing escapes, the worker thread lives, nothing is half-written, and once the
    faults stop the next request of every kind works."""
    from collections import Counter

    from explorer import engine as engine_mod

    armed = {"on": False}
    hits: Counter = Counter()

    class FaultyEngine(engine_mod.Engine):
        pass

    def faulty(name):
        original = getattr(engine_mod.Engine, name)

        def method(self, *a, **k):
            if armed["on"]:
                hits[name] += 1
                raise error(f"injected fault in {name}")
            return original(self, *a, **k)

        return method

    for name in FAULT_METHODS:
        setattr(FaultyEngine, name, faulty(name))
    photos = write_photos(tmp_path / "photos")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    answer = {"open": "", "save": ""}
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (answer["open"], ""))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (answer["save"], ""))
    win = make_window(tiny_model, engine_factory=lambda: FaultyEngine("cpu", 1))
    win.plots_dock.show()
    _two_keyframes(qtbot, win)
    win.tools_dock.show()
    win.tools.setCurrentWidget(win.inpaint)
    win.canvas.set_mask_array(np.eye(16, dtype=bool))
    p, d = win.inpaint, win.directions
    p.steps.setValue(1)
    p.candidates.setValue(2)
    p.run.click()
    qtbot.waitUntil(lambda: p.results.count() == 2, timeout=WAIT_MS)
    d.name.setText("Trait")
    d.has.click()
    win.act_new.trigger()
    wait_settled(qtbot, win)
    d.lacks.click()  # (another face: the same one in both groups has no direction)
    qtbot.waitUntil(lambda: d.create.isEnabled(), timeout=WAIT_MS)
    d.k.setValue(1)
    d.samples.setValue(16)
    win.interpolate.frames.setValue(4)
    win.interpolate.scale.setValue(1)

    def every_request(tag: str) -> None:
        """One request of each kind, through the widgets, waiting for each to finish."""
        win.plots_dock.toggleViewAction().trigger()
        win.plots_dock.toggleViewAction().trigger()  # shown again: the plots analyse the picture
        qtbot.wait(400)
        win.attributes.row("Young").slider.setValue(win.attributes.row("Young").slider.value() + 7)  # render
        win.interpolate.scrub.setValue((win.interpolate.scrub.value() + 1) % 4)  # preview
        win.interpolate.mode.setCurrentIndex(1 - win.interpolate.mode.currentIndex())  # filmstrip (after 250 ms)
        qtbot.wait(400)
        win.act_keyframe.trigger()  # materialize
        answer["open"] = str(photos["png"])
        win.act_open_photo.trigger()  # open_photo
        p.results.setCurrentRow(0)
        p.use.click()  # adopt_candidate
        p.run.click()  # inpaint
        answer["save"] = str(out_dir / f"morph-{tag}.mp4")
        win.interpolate.export.click()  # export
        d.create.click()  # fit_direction
        d.compute.click()  # principal
        answer["save"] = str(out_dir / f"model-{tag}.safetensors")
        d.save.click()  # save_model
        qtbot.waitUntil(lambda: not win.jobs.pending and win.worker.busy_command is None, timeout=WAIT_MS)

    armed["on"] = True
    every_request("faulty")
    assert set(hits) == set(FAULT_METHODS), f"not reached: {set(FAULT_METHODS) - set(hits)}"
    shown = "out of memory" if error is MemoryError else "injected fault in render"
    assert any(shown in m for m in win.renderer.errors), win.renderer.errors
    assert win.message.text().startswith(("Could not", "The export failed", "Inpainting failed")), win.message.text()
    assert win.host.thread.isRunning()
    assert list(out_dir.iterdir()) == []  # neither a video nor a model, nor a temporary file

    armed["on"] = False
    win.message.hide()
    kf, tags_before = win.interpolate.keyframes.count(), win.state.directions
    stamp = win.canvas.stamp()
    every_request("working")
    assert win.canvas.stamp() > stamp and win.settled()  # a new picture
    assert win.interpolate.keyframes.count() == kf + 1
    assert sorted(x.name for x in out_dir.iterdir()) == ["model-working.safetensors", "morph-working.mp4"]
    assert win.state.direction("Trait") is not None and win.state.direction("pc1") is not None and win.state.directions != tags_before, (win.message.text(), d.create.isEnabled(), d.positives.count(), d.negatives.count())
    assert catcher.exceptions == [] and not catcher.bad_qt_messages(), "\n".join(catcher.problems())
