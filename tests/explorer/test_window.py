"""The explorer window on a tiny model: picture, sliders, latest-wins rendering, history, errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

import glowcore
from glowcore.decoding import compiled
from glowcore.ops import directions
from explorer.state import DEFAULT_DETAIL_TEMPERATURE, FaceRef, Snapshot

from .conftest import WAIT_MS, canvas_array, wait_settled


def expected_image(model_path, seed: int, temperature: float, amounts: dict, detail: float = DEFAULT_DETAIL_TEMPERATURE) -> np.ndarray:
    m = glowcore.load_model(model_path, device="cpu")
    lat = m.sample_latent(1, temperature, seed=seed, detail_temperature=detail)
    if amounts:
        lat = directions.edit(m, lat, amounts)
    return glowcore.to_uint8(m.decode(lat))[0]


def set_slider(qtbot, win, name: str, value: float) -> np.ndarray:
    win.attributes.row(name).slider.setValue(int(round(value * 100)))
    wait_settled(qtbot, win)
    return canvas_array(win)


def test_window_opens_on_the_model_and_shows_a_face(window, tiny_model):
    win = window
    img = canvas_array(win)
    assert img.shape == (16, 16, 3)
    assert img.std() > 0  # a picture, not a blank
    np.testing.assert_allclose(img.astype(int), expected_image(tiny_model, 7, 0.7, {}).astype(int), atol=1)
    assert "CPU" in win.device_widget.text()  # the status bar says where the model runs
    assert "tiny" in win.model_label.text()
    assert set(win.attributes.rows) == set(glowcore.load_model(tiny_model, device="cpu").directions)
    # favourites are pinned first
    first = [win.attributes.body_layout.itemAt(i).widget() for i in range(win.attributes.body_layout.count())]
    names = [w.name for w in first if hasattr(w, "name")]
    assert names[:5] == ["Smiling", "Young", "Male", "Blond_Hair", "Eyeglasses"]


def test_a_slider_changes_the_picture_and_the_same_value_gives_the_same_picture(qtbot, window, tiny_model):
    win = window
    base = canvas_array(win)
    a = set_slider(qtbot, win, "Smiling", 1.2)
    assert not np.array_equal(a, base)
    b = set_slider(qtbot, win, "Smiling", -0.8)
    assert not np.array_equal(b, a)
    again = set_slider(qtbot, win, "Smiling", 1.2)
    assert np.array_equal(again, a)
    np.testing.assert_allclose(a.astype(int), expected_image(tiny_model, 7, 0.7, {"Smiling": 1.2}).astype(int), atol=1)
    zero = set_slider(qtbot, win, "Smiling", 0.0)
    assert np.array_equal(zero, base)


def test_a_burst_of_slider_moves_renders_only_the_newest(qtbot, make_window, tiny_model):
    from explorer import engine as engine_mod

    class SlowEngine(engine_mod.Engine):
        """Renders take 20 ms, like the 64x64 face model on a small CPU."""

        def render(self, spec, with_before=False, cancel=None):
            time.sleep(0.02)
            return super().render(spec, with_before, cancel)

    win = make_window(tiny_model, engine_factory=lambda: SlowEngine("cpu"))
    slider = win.attributes.row("Young").slider
    values = np.linspace(-1.5, 1.5, 100)
    before = win.worker.render_count
    for v in values:  # 100 moves arriving faster than the worker renders
        slider.setValue(int(round(v * 100)))
    wait_settled(qtbot, win)
    rendered = win.worker.render_count - before
    final = canvas_array(win)
    assert win.state.amount("Young") == pytest.approx(1.5)
    assert rendered < 50, f"{rendered} renders for 100 moves: requests were not coalesced"
    # exactly the picture of the final value
    other = set_slider(qtbot, win, "Young", 0.3)
    assert not np.array_equal(other, final)
    assert np.array_equal(set_slider(qtbot, win, "Young", 1.5), final)


def test_a_render_made_stale_early_gives_way_to_the_newer_one_but_never_twice_in_a_row(qtbot, make_window, tiny_model):
    import queue
    import threading

    from explorer import engine as engine_mod

    starts: queue.Queue = queue.Queue()
    go = threading.Semaphore(0)
    gated = {"on": False}

    class GatedEngine(engine_mod.Engine):
        """While gated, each render announces itself and waits for the test to let it go on."""

        def render(self, spec, with_before=False, cancel=None):
            if gated["on"]:
                starts.put(spec)
                assert go.acquire(timeout=10)
            return super().render(spec, with_before, cancel)

    win = make_window(tiny_model, engine_factory=lambda: GatedEngine("cpu", lanes=1))
    win.worker.ABANDON_BEFORE = 1e9  # however long the gate held it, a render counts as just started
    slider = win.attributes.row("Young").slider
    renders, abandoned = win.worker.render_count, win.worker.renders_abandoned
    gated["on"] = True
    try:
        _drop_then_finish(starts, go, slider)
    finally:  # never leave the worker waiting at the gate
        gated["on"] = False
        for _ in range(3):
            go.release()
    wait_settled(qtbot, win)
    assert win.worker.renders_abandoned == abandoned + 1
    assert win.worker.render_count == renders + 2  # 0.6 and 0.9
    assert np.array_equal(canvas_array(win), set_slider(qtbot, win, "Young", 0.9))


def _drop_then_finish(starts, go, slider) -> None:
    slider.setValue(30)
    assert starts.get(timeout=10).amounts_dict["Young"] == pytest.approx(0.3)
    slider.setValue(60)  # arrives while 0.3 renders: 0.3 is dropped between levels
    go.release()
    assert starts.get(timeout=10).amounts_dict["Young"] == pytest.approx(0.6)
    slider.setValue(90)  # arrives while 0.6 renders, right after a dropped render: 0.6 is finished
    go.release()
    assert starts.get(timeout=10).amounts_dict["Young"] == pytest.approx(0.9)


def test_stale_results_are_dropped(qtbot, window):
    win = window
    shown = win.canvas.stamp()
    old = win.renderer.shown
    # a result older than the picture on screen arrives late: it must not replace it
    stale = type(old)(stamp=shown - 1, spec=old.spec, image=old.image.copy(), before=None, ms=1.0, array=old.array)
    stale.image.fill(0)
    win.renderer.on_rendered(stale)
    assert win.canvas.stamp() == shown
    assert canvas_array(win).std() > 0


def test_detail_slider_samples_the_fine_levels_at_its_own_temperature(qtbot, window, tiny_model):
    win = window
    seed = win.state.face.seed
    win.detail_slider.setValue(20)
    wait_settled(qtbot, win)
    assert win.state.detail_temperature == pytest.approx(0.2)
    np.testing.assert_array_equal(canvas_array(win), expected_image(tiny_model, seed, win.state.temperature, {}, detail=0.2))
    win.act_undo.trigger()
    wait_settled(qtbot, win)
    assert win.detail_slider.value() == int(round(DEFAULT_DETAIL_TEMPERATURE * 100))


def test_temperature_new_face_seed_undo_and_history(qtbot, window):
    win = window
    start = canvas_array(win)
    win.temp_slider.setValue(110)
    wait_settled(qtbot, win)
    hot = canvas_array(win)
    assert not np.array_equal(hot, start)
    assert win.state.temperature == pytest.approx(1.1)
    win.seed_spin.setValue(12345)  # type a seed
    wait_settled(qtbot, win)
    assert win.state.face == FaceRef.from_seed(12345)
    assert not np.array_equal(canvas_array(win), hot)
    win.act_new.trigger()
    wait_settled(qtbot, win)
    assert win.state.face.seed != 12345
    assert win.history.count() == 3
    qtbot.waitUntil(lambda: all(e.thumb is not None for e in win.state.history), timeout=WAIT_MS)
    # click the first face in the history strip
    first = win.history.item(0)
    rect = win.history.visualItemRect(first)
    qtbot.mouseClick(win.history.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    wait_settled(qtbot, win)
    assert win.state.face == FaceRef.from_seed(7)
    assert np.array_equal(canvas_array(win), hot)  # the first face, at the temperature it had
    win.act_undo.trigger()
    wait_settled(qtbot, win)
    assert win.state.face.seed not in (7, 12345)
    win.act_redo.trigger()
    wait_settled(qtbot, win)
    assert win.state.face == FaceRef.from_seed(7)


def test_fixed_attributes_and_coarse_levels_change_the_edit(qtbot, window):
    win = window
    plain = set_slider(qtbot, win, "Male", 1.5)
    win.attributes.row("Smiling").lock.setChecked(True)
    wait_settled(qtbot, win)
    assert win.state.fixed == {"Smiling"}
    fixed = canvas_array(win)
    assert not np.array_equal(fixed, plain)
    win.attributes.coarse.setChecked(True)
    wait_settled(qtbot, win)
    assert not np.array_equal(canvas_array(win), fixed)
    win.attributes.reset_all.click()
    wait_settled(qtbot, win)
    assert win.state.amounts == {}


def test_numeric_entry_and_search_filter(qtbot, window):
    win = window
    row = win.attributes.row("Eyeglasses")
    row.spin.setValue(0.75)
    wait_settled(qtbot, win)
    assert win.state.amount("Eyeglasses") == pytest.approx(0.75)
    assert row.slider.value() == 75
    win.attributes.search.setText("hair")
    visible = {n for n, r in win.attributes.rows.items() if not r.isHidden()}
    assert visible == {"Blond_Hair", "Wavy_Hair"}
    win.attributes.search.clear()
    row.star.setChecked(False)
    assert "Eyeglasses" not in win.state.favourites
    assert "Eyeglasses" not in (win.settings.q.value("favourites") or [])


def test_plots_receive_projections_bits_per_dim_and_render_times(qtbot, window):
    win = window
    set_slider(qtbot, win, "Smiling", 1.0)
    m = glowcore.load_model(win.model_info.path, device="cpu")
    lat = directions.edit(m, m.sample_latent(1, 0.7, seed=7, detail_temperature=DEFAULT_DETAIL_TEMPERATURE), {"Smiling": 1.0})
    expect = float(directions.project(m, lat)["Smiling"][0])
    # the analysis of the unedited face may arrive first (it runs when a picture settles): wait
    # for the one of the edited face
    qtbot.waitUntil(lambda: abs(win.plots.projections.get("Smiling", expect + 1) - expect) < 1e-3 and len(win.plots.bpds) > 0,
                    timeout=WAIT_MS)
    assert np.isfinite(win.plots.bpds[-1])
    assert len(win.plots.render_times) >= 2
    # the render-time axis spans a readable window even with a few frames
    qtbot.waitUntil(lambda: win.plots.rt_value.text().startswith("median"), timeout=WAIT_MS)
    lo, hi = win.plots.rt_plot.viewRange()[0]
    assert lo <= 0 and hi >= 30


def test_save_and_copy_picture(qtbot, window, tmp_path):
    from PySide6.QtGui import QGuiApplication, QImage

    from explorer.qimage import qimage_to_array

    win = window
    tmp_path = tmp_path / "pictures"
    tmp_path.mkdir()
    out = tmp_path / "face.png"
    win.save_picture_to(str(out))
    assert np.array_equal(qimage_to_array(QImage(str(out))), canvas_array(win))
    win.save_picture_to(str(tmp_path / "big.png"), scale=4)
    assert QImage(str(tmp_path / "big.png")).width() == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png", "face.png"]  # no temporary files left
    win.copy_picture()
    assert QGuiApplication.clipboard().image().width() == 64


def test_photo_opens_and_sliders_edit_it(qtbot, window, tmp_path):
    from PIL import Image

    win = window
    rng = np.random.default_rng(0)
    photo = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "me.png")
    win.open_photo(str(tmp_path / "me.png"))
    qtbot.waitUntil(lambda: win.state.face is not None and win.state.face.kind == "latent", timeout=WAIT_MS)
    wait_settled(qtbot, win)
    assert win.state.face.label == "me.png"
    assert not win.temp_slider.isEnabled()  # temperature does not apply to a photo
    mine = canvas_array(win)
    edited = set_slider(qtbot, win, "Smiling", 1.0)
    assert not np.array_equal(edited, mine)


def test_corrupt_photo_and_model_show_errors_and_the_app_stays_usable(qtbot, window, tmp_path):
    win = window
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    win.open_photo(str(bad))
    qtbot.waitUntil(lambda: "broken.jpg" in win.message.text(), timeout=WAIT_MS)
    assert win.message.kind == "error"
    # a corrupt model: good config, truncated weights
    import shutil

    broken = tmp_path / "broken_model"
    shutil.copytree(win.model_info.path, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    win.open_model(str(broken))
    qtbot.waitUntil(lambda: "Could not open the model" in win.message.text(), timeout=WAIT_MS)
    assert "model.safetensors" in win.message.text()
    # the window still works on the model it had
    before = canvas_array(win)
    assert not np.array_equal(set_slider(qtbot, win, "Young", 1.0), before)
    assert win.model_info.name == "tiny"


def test_no_model_shows_a_message_and_file_open_works(qtbot, make_window, tmp_path, tiny_model):
    win = make_window(tmp_path / "does-not-exist", wait=False)
    qtbot.waitUntil(lambda: "Could not open the model" in win.message.text(), timeout=WAIT_MS)
    assert "does-not-exist" in win.message.text()
    assert "Open model" in win.canvas.placeholder
    assert win.message.action.isVisible()
    win.open_model(str(tiny_model))
    qtbot.waitUntil(lambda: win.canvas.image() is not None, timeout=WAIT_MS)
    assert win.settings.q.value("model/last") == str(tiny_model)


def test_paste_and_drop_a_picture(qtbot, window, tmp_path):
    from PIL import Image
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent, QGuiApplication, QImage

    win = window
    rng = np.random.default_rng(1)
    arr = (rng.random((24, 24, 3)) * 255).astype(np.uint8)
    QGuiApplication.clipboard().setImage(QImage(arr.data, 24, 24, 72, QImage.Format.Format_RGB888).copy())
    win.act_paste.trigger()
    qtbot.waitUntil(lambda: win.state.face.kind == "latent", timeout=WAIT_MS)
    assert win.state.face.label == "pasted picture"
    Image.fromarray(arr[::-1]).save(tmp_path / "dropped.png")
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(tmp_path / "dropped.png"))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, md, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    win.dropEvent(ev)
    qtbot.waitUntil(lambda: win.state.face.label == "dropped.png", timeout=WAIT_MS)
    wait_settled(qtbot, win)
    assert len(win.state.history) == 3


def test_settings_remember_favourites_layout_and_model(qtbot, make_window, tiny_model, settings):
    win = make_window(tiny_model)
    win.attributes.row("Bangs").star.setChecked(True)
    win.act_pixel.setChecked(True)
    assert win.photo_panel.spread.isChecked()  # the photo paste's default: spread
    win.photo_panel.spread.setChecked(False)
    win.close()
    again = make_window(None)  # no --model: the last model opens
    assert again.model_info.path == str(tiny_model)
    assert "Bangs" in again.state.favourites
    assert again.act_pixel.isChecked() and not again.canvas.smooth
    assert not again.photo_panel.spread.isChecked()


def test_live_pictures_use_the_fast_networks_unless_exact_decoding_is_asked(monkeypatch):
    from explorer import engine as engine_mod
    from glowcore.nn.coupling import fast_networks_supported

    monkeypatch.delenv("GLOW_EXACT_DECODE", raising=False)
    assert engine_mod.default_fast() == fast_networks_supported()
    monkeypatch.setenv("GLOW_EXACT_DECODE", "1")
    assert engine_mod.default_fast() is False
    assert engine_mod.Engine("cpu", 1, fast=True).fast is True


def test_decoding_graphs_are_built_when_idle_not_before_the_first_face(qtbot, window, tiny_model):
    from explorer.engine import Engine

    eng = Engine("cpu", 1)
    eng.open_model(str(tiny_model))
    assert not eng.idle_work()  # not before the first face: its render request is on its way
    eng.render(Snapshot(face=FaceRef.from_seed(1)))
    assert not compiled.built(eng.model)  # the first face does not wait for tracing
    assert eng.idle_work() and compiled.built(eng.model)
    while eng.idle_work():  # then the damped graphs far edits use (glowcore.decoding.stable)
        pass
    assert any(k[3] is not None for k in compiled.built(eng.model))
    assert not eng.idle_work()  # once per model
    # the window's worker does it on its own once the first face is shown
    qtbot.waitUntil(lambda: bool(compiled.built(window.worker._engine.model)), timeout=WAIT_MS)


def test_a_drag_settles_on_its_last_picture_checked_in_full(qtbot, window, monkeypatch):
    """The last picture of a far-edit drag, decoded with the drag hint, is checked in full once
    the drag pauses (``Engine.check_hinted``, the worker's idle work), never during the drag;
    where the check's picture differs, it replaces the one shown for the same request (a
    ``refined`` result of the same stamp). The engine's check itself: test_engine_drag.py."""
    win = window
    wait_settled(qtbot, win)
    eng = win.worker._engine
    eng.lanes = 1  # one render thread: every picture is the engine's own (two: test_render_lane.py)
    checked: list[int] = []
    corrected = np.full((16, 16, 3), 7, dtype=np.uint8)  # unlike any picture of the model

    def check_hinted(cancel=None):
        checked.append(1)
        return corrected

    # as if every picture had been decoded with the hint, until one is checked
    monkeypatch.setattr(eng, "unchecked_picture", lambda: not checked)
    monkeypatch.setattr(eng, "check_hinted", check_hinted)
    monkeypatch.setattr(eng, "settle_s", 0.3)  # a pause this long (the moves come every 10 ms)
    slider = win.attributes.row("Smiling").slider
    for v in range(10, 75, 5):  # a drag
        slider.setValue(v)
        qtbot.wait(10)
    wait_settled(qtbot, win)
    stamp = win.renderer.shown_stamp
    assert not checked
    qtbot.waitUntil(lambda: np.array_equal(canvas_array(win), corrected), timeout=WAIT_MS)
    assert checked == [1] and win.renderer.shown.refined and win.renderer.shown_stamp == stamp
    qtbot.wait(300)
    assert checked == [1]  # once


def test_a_slider_move_repaints_the_canvas_once_per_picture_not_for_the_mask_mode(qtbot, window, monkeypatch):
    """The window says the mask mode on every state change; only a change of mode repaints the
    face canvas or the photo view (a slider move used to repaint the canvas twice: issue 18)."""
    win = window
    wait_settled(qtbot, win)
    updates: list[str] = []
    for name, widget in (("canvas", win.canvas), ("photo", win.photo_panel.view)):
        real = widget.update
        monkeypatch.setattr(widget, "update", lambda *a, n=name, r=real: (updates.append(n), r(*a))[1])
    win.update_mask_mode()
    win.attributes.row("Smiling").slider.setValue(40)
    assert updates == []  # the move asked for a picture; nothing else repainted
    wait_settled(qtbot, win)
    assert updates.count("canvas") >= 1 and "photo" not in updates  # the picture itself
    updates.clear()
    win.tools.setCurrentWidget(win.inpaint)  # the Inpaint tab: the mask mode changes
    qtbot.waitUntil(lambda: win.canvas.mask_mode, timeout=WAIT_MS)
    assert "canvas" in updates


def test_the_render_time_plot_waits_while_pictures_stream_in(qtbot, window, monkeypatch):
    """During a drag (render times arriving less than RT_QUIET_S apart) the plot is redrawn at
    most every RT_DRAG_EVERY_S; once they pause, at the next tick."""
    from explorer.widgets import plots as plots_mod

    win = window
    win.plots_dock.show()
    pl = win.plots
    qtbot.waitUntil(pl.isVisible, timeout=WAIT_MS)
    now = [plots_mod.time.monotonic() + 10.0]  # a clock the test moves (after the real one's redraws)
    monkeypatch.setattr(plots_mod.time, "monotonic", lambda: now[0])
    drawn: list[int] = []
    monkeypatch.setattr(pl.rt_curve, "setData", lambda xs, ys: drawn.append(len(ys)))
    pl._redraw_times()  # whatever was pending before
    drawn.clear()
    for i in range(100):  # 2 s of pictures, one every 20 ms, the plot's timer ticking with them
        now[0] += 0.02
        pl.add_render_time(15.0)
        pl._redraw_times()
    during = len(drawn)
    assert 1 <= during <= 2  # not 100 (every call), and not 10 (every 200 ms tick)
    now[0] += pl.RT_QUIET_S
    pl._redraw_times()
    assert len(drawn) == during + 1 and drawn[-1] == len(pl.render_times)  # the pause: drawn at once, all of it
