"""Fills painted on the user's full-size photo (issue #14 item 3, in the window): the mask is
painted on the photo view, the worker carries it into the face's frame, fills the face, and the
candidate used is pasted back into the photo (glowcore's paste_fill); Save writes it full size,
undo goes back. The photo is the generated one of test_photo.py (no CelebA pixels)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt

from explorer.qimage import qimage_to_array

from .conftest import WAIT_MS
from .test_photo import FACE_AT, H, W, open_photo, photo_array, photo_png, wait_for_photo  # noqa: F401 - fixtures

__all__: list[str] = []


def paint(qtbot, view, points: list[tuple[float, float]]) -> None:
    """A stroke on the photo view through ``points`` (photo pixels)."""
    pts = [view.from_photo(QPointF(x, y)) for x, y in points]
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=pts[0].toPoint())
    for p in pts[1:]:
        qtbot.mouseMove(view, pos=p.toPoint())
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=pts[-1].toPoint())


def inpaint_tab_on_photo(qtbot, win, photo_png):  # noqa: F811
    open_photo(qtbot, win, photo_png)
    win.resize(1400, 900)
    win.show_tool(win.inpaint)
    view = win.photo_panel.view
    qtbot.waitUntil(lambda: view.width() > 200, timeout=WAIT_MS)
    return view


def test_a_fill_painted_on_the_photo_is_pasted_back_at_full_size_and_undo_goes_back(qtbot, window, photo_png, photo_array, tmp_path):  # noqa: F811
    import cv2

    from glowcore.ops.align import align
    from glowcore.ops.paste import paste_fill

    win = window
    view = inpaint_tab_on_photo(qtbot, win, photo_png)
    assert view.mask_mode and not win.canvas.mask_mode  # the brush paints on the photo, not the face
    assert win.inpaint.photo_note.isVisible() and "model's resolution" in win.inpaint.photo_note.text()
    first = win.photo_ctl.photo
    win.inpaint.size.setValue(10)  # screen pixels
    x, y, s = FACE_AT
    paint(qtbot, view, [(x + 0.35 * s, y + 0.5 * s), (x + 0.5 * s, y + 0.52 * s), (x + 0.65 * s, y + 0.5 * s)])
    mask = view.mask_array()
    assert mask.shape == (H, W) and 50 < mask.sum() < 0.1 * H * W
    per_screen_px = W / view.image_rect().width()  # the brush is 10 screen pixels at any zoom
    assert view.photo_brush() == pytest.approx(10 * per_screen_px)
    view.set_zoom(2.0)
    assert view.photo_brush() == pytest.approx(5 * per_screen_px)
    view.set_zoom(1.0)
    assert not mask[: y].any() and not mask[:, : x].any()  # only on the face

    win.inpaint.candidates.setValue(2)
    win.inpaint.steps.setValue(3)
    win.inpaint.run.click()
    qtbot.waitUntil(lambda: win.inpaint.results.count() == 2, timeout=WAIT_MS)
    cand = qimage_to_array(win.inpaint.results.images()[1])
    size = win.model_info.image_size
    assert cand.shape == (size, size, 3)  # side by side as model-size faces, as on the canvas

    win.inpaint.results.setCurrentRow(1)
    win.inpaint.use.click()
    qtbot.waitUntil(lambda: win.photo_ctl.photo is not first, timeout=WAIT_MS)
    wait_for_photo(qtbot, win)
    shown = qimage_to_array(view.image())
    assert not view.mask_array().any()  # the mask is cleared once the fill is in

    out = tmp_path / "filled.png"
    win.photo_ctl.save_photo_to(str(out))
    qtbot.waitUntil(lambda: out.exists() and not win.jobs.pending, timeout=WAIT_MS)
    saved = np.asarray(Image.open(out).convert("RGB"))
    assert saved.shape == photo_array.shape  # full size
    assert np.array_equal(saved, shown)  # what is shown is what is saved
    aligned = align(photo_array, size)
    reach = int(np.ceil(3 * 1.5 * aligned.face_side / size)) + 3  # the feather: 1.5 model pixels (a 16-px model here: wide)
    far = cv2.dilate(mask.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) == 0
    assert far.mean() > 0.5
    assert np.array_equal(saved[far], photo_array[far])  # far from the stroke: bit-identical
    diff = np.abs(saved.astype(int) - photo_array).max(2)
    assert diff[mask].mean() > 3  # the stroke was filled
    expected = paste_fill(aligned, cand, photo_array, mask)  # glowcore's own paste of that candidate
    np.testing.assert_allclose(saved.astype(int), expected.astype(int), atol=1)

    # undo: the photo before the fill; redo: the fill again
    win.state.undo()
    wait_for_photo(qtbot, win)
    assert win.photo_ctl.photo is first and win.photo_panel.isVisible()
    assert np.array_equal(qimage_to_array(view.image()), photo_array)
    win.state.redo()
    wait_for_photo(qtbot, win)
    assert np.array_equal(qimage_to_array(view.image()), saved)

    # a face box drawn by hand frames the photo as it is now, the fill included (not the file)
    filled = win.photo_ctl.photo
    win.photo_ctl.use_box(float(x), float(y), float(s), float(s))
    qtbot.waitUntil(lambda: win.photo_ctl.photo is not filled and not win.jobs.pending, timeout=WAIT_MS)
    wait_for_photo(qtbot, win)
    assert np.array_equal(qimage_to_array(win.photo_ctl.photo.photo), saved)
    assert np.array_equal(qimage_to_array(view.image()), saved)

    # the photo closed: the brush paints on the face canvas again
    win.photo_ctl.close_photo()
    win.state.undo()
    qtbot.waitUntil(lambda: not win.photo_ctl.active(), timeout=WAIT_MS)
    win.show_tool(win.inpaint)
    win.tools.setCurrentWidget(win.inpaint)
    qtbot.waitUntil(lambda: win.canvas.mask_mode and not view.mask_mode, timeout=WAIT_MS)
    assert not win.inpaint.photo_note.isVisible()


def test_a_stroke_outside_the_face_frame_says_so_and_changes_nothing(qtbot, window, photo_png, photo_array):  # noqa: F811
    win = window
    view = inpaint_tab_on_photo(qtbot, win, photo_png)
    first = win.photo_ctl.photo
    win.inpaint.size.setValue(8)
    paint(qtbot, view, [(15, 15), (60, 20), (90, 25)])  # the top left corner, far from the face's frame
    assert view.mask_array().any()
    win.inpaint.steps.setValue(3)
    win.inpaint.run.click()
    qtbot.waitUntil(lambda: "does not touch the face" in win.message.text(), timeout=WAIT_MS)
    assert "\n" not in win.message.text()  # one line
    qtbot.waitUntil(lambda: not win.jobs.pending, timeout=WAIT_MS)
    wait_for_photo(qtbot, win)
    assert win.inpaint.results.count() == 0
    assert win.photo_ctl.photo is first
    assert np.array_equal(qimage_to_array(view.image()), photo_array)


def shift_wheel(view, notches: int) -> None:
    """Shift+wheel on ``view``: one event per notch, as a mouse wheel sends them."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    centre = QPointF(view.width() / 2, view.height() / 2)
    for _ in range(abs(notches)):
        ev = QWheelEvent(centre, view.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 120 if notches > 0 else -120), Qt.MouseButton.NoButton,
                         Qt.KeyboardModifier.ShiftModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(view, ev)


def test_shift_wheel_on_the_photo_and_on_the_face_moves_the_brush_size_slider(qtbot, window, photo_png):  # noqa: F811
    win = window
    view = inpaint_tab_on_photo(qtbot, win, photo_png)
    win.inpaint.size.setValue(20)
    zoom = view.zoom
    shift_wheel(view, 3)
    assert view.brush_size == 26 and win.inpaint.size.value() == 26 and win.inpaint.size_label.text() == "26 px"
    assert view.zoom == zoom  # Shift+wheel sizes the brush, it does not zoom
    shift_wheel(view, -1)
    assert view.brush_size == 24 and win.inpaint.size.value() == 24
    win.photo_ctl.close_photo()
    qtbot.waitUntil(lambda: not win.photo_ctl.active(), timeout=WAIT_MS)
    win.show_tool(win.inpaint)
    qtbot.waitUntil(lambda: win.canvas.mask_mode and not view.mask_mode, timeout=WAIT_MS)
    win.inpaint.size.setValue(6)
    shift_wheel(win.canvas, 2)
    assert win.canvas.brush_size == 8 and win.inpaint.size.value() == 8 and win.inpaint.size_label.text() == "8 px"
    shift_wheel(view, 5)  # the photo view is no longer the target: the slider stays
    assert win.inpaint.size.value() == 8


@pytest.mark.parametrize("spread", [False, True])
def test_a_fill_on_an_edited_photo_starts_from_the_photo_as_shown_in_either_paste_mode(qtbot, window, photo_png, photo_array, tiny_model, spread):  # noqa: F811
    import glowcore
    from glowcore.ops.align import render_face
    from glowcore.ops.paste import edit_photo, mask_to_face

    win = window
    view = inpaint_tab_on_photo(qtbot, win, photo_png)
    win.photo_panel.spread.setChecked(spread)
    win.attributes.row("Smiling").slider.setValue(150)
    wait_for_photo(qtbot, win)
    shown = qimage_to_array(view.image())
    win.inpaint.size.setValue(10)
    x, y, s = FACE_AT
    paint(qtbot, view, [(x + 0.4 * s, y + 0.5 * s), (x + 0.6 * s, y + 0.5 * s)])
    mask = view.mask_array()
    win.inpaint.candidates.setValue(1)
    win.inpaint.steps.setValue(3)
    win.inpaint.run.click()
    qtbot.waitUntil(lambda: win.inpaint.results.count() == 1, timeout=WAIT_MS)
    cand = qimage_to_array(win.inpaint.results.images()[0])
    m = glowcore.load_model(tiny_model, device="cpu")
    composite, aligned = edit_photo(m, photo_array, {"Smiling": 1.5}, spread=spread)
    np.testing.assert_allclose(shown.astype(int), composite.astype(int), atol=1)  # the photo as shown
    known = ~mask_to_face(aligned, mask)
    face = render_face(composite, aligned.transform, aligned.size)
    assert np.abs(cand[known].astype(int) - face[known]).max() <= 2  # the fill keeps the shown photo's face outside the hole
    other, _ = edit_photo(m, photo_array, {"Smiling": 1.5}, spread=not spread)
    assert np.abs(render_face(other, aligned.transform, aligned.size)[known].astype(int) - face[known]).max() > 4  # the modes differ there
