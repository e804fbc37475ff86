"""A user's photo in the window (issue #14 item 5): the whole photo beside the face, the edit
pasted back at full size by the worker, Save at the photo's own size, and the bad inputs.

The photo is generated: a face sampled from the bundled model, enlarged into a larger picture
with a textured background (no CelebA image is needed or stored). The window runs the tiny test
model, whose 16-px face is pasted back into the 480x360 photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QMessageBox

from explorer.qimage import qimage_to_array

from .conftest import WAIT_MS, wait_settled

W, H = 480, 360
FACE_AT = (150, 80, 192)  # x, y, side of the enlarged face in the photo


@pytest.fixture(scope="session")
def photo_array() -> np.ndarray:
    import torch

    import glowcore

    m = glowcore.load_model(None, device="cpu")  # the bundled face model
    with torch.inference_mode():
        face = glowcore.to_uint8(m.decode(m.sample_latent(1, 0.6, seed=0)))[0]
    yy, xx = np.mgrid[0:H, 0:W]
    rng = np.random.default_rng(0)
    bg = np.stack([xx * 255 // W, yy * 255 // H, np.full_like(xx, 120)], -1) + rng.integers(-20, 21, (H, W, 3))
    photo = np.clip(bg, 0, 255).astype(np.uint8)
    x, y, s = FACE_AT
    photo[y : y + s, x : x + s] = np.asarray(Image.fromarray(face).resize((s, s), Image.Resampling.BICUBIC))
    return photo


@pytest.fixture
def photo_png(tmp_path, photo_array) -> Path:
    p = tmp_path / "portrait.png"
    Image.fromarray(photo_array).save(p)
    return p


def open_photo(qtbot, win, source) -> None:
    ctl = win.photo_ctl
    before = ctl.photo
    win.open_photo(source)
    qtbot.waitUntil(lambda: ctl.photo is not None and ctl.photo is not before, timeout=WAIT_MS)
    wait_for_photo(qtbot, win)


def wait_for_photo(qtbot, win) -> None:
    """The face picture answers the newest request and the photo answers the face picture."""
    wait_settled(qtbot, win)
    qtbot.waitUntil(win.photo_ctl.settled, timeout=WAIT_MS)


def expected_composite(tiny_model, photo: np.ndarray, amounts: dict) -> np.ndarray:
    """The same edit done with glowcore directly: align, encode, edit, decode, paste."""
    import glowcore
    from glowcore.ops.paste import edit_photo

    m = glowcore.load_model(tiny_model, device="cpu")
    return edit_photo(m, photo, amounts)[0]


def test_a_photo_opens_whole_with_the_face_found_and_its_face_beside_it(qtbot, window, photo_png):
    win = window
    open_photo(qtbot, win, photo_png)
    ph, view = win.photo_ctl.photo, win.photo_panel.view
    assert win.photo_panel.isVisible() and ph.found
    assert ph.size == (W, H) and (view.before().width(), view.before().height()) == (W, H)
    x, y, w, h = ph.box  # the face box lies on the enlarged face
    fx, fy, s = FACE_AT
    assert fx <= x and x + w <= fx + s and fy <= y and y + h <= fy + s
    assert set(ph.landmarks) == {"left_eye", "right_eye", "mouth"}
    le, re, mo = (ph.landmarks[k] for k in ("left_eye", "right_eye", "mouth"))
    assert le[0] < re[0] and mo[1] > max(le[1], re[1])  # eyes left and right, the mouth below
    assert len(view.frame) == 4
    assert win.state.face.latent_id == ph.latent_id
    assert win.canvas.image().width() == 16  # the model-size face beside the photo
    assert "face found" in ph.message


def test_a_slider_edits_the_whole_photo_and_save_keeps_its_size_and_background(qtbot, window, photo_png, photo_array, tiny_model, tmp_path):
    win = window
    open_photo(qtbot, win, photo_png)
    original = qimage_to_array(win.photo_panel.view.image())
    assert np.array_equal(original, photo_array)  # no edit yet: the photo itself
    win.attributes.row("Smiling").slider.setValue(150)
    wait_for_photo(qtbot, win)
    shown = qimage_to_array(win.photo_panel.view.image())
    assert shown.shape == photo_array.shape
    assert win.photo_panel.view.stamp() == win.last_render_stamp  # the composite of the face on screen
    x, y, s = FACE_AT
    assert np.abs(shown[y : y + s, x : x + s].astype(int) - photo_array[y : y + s, x : x + s]).max() > 10  # the face changed
    out = tmp_path / "edited.png"
    win.photo_ctl.save_photo_to(str(out))
    qtbot.waitUntil(lambda: out.exists() and not win.jobs.pending, timeout=WAIT_MS)
    saved = np.asarray(Image.open(out).convert("RGB"))
    assert saved.shape == photo_array.shape  # full size
    assert np.array_equal(saved, shown)  # what was shown is what was saved
    import glowcore
    from glowcore.ops.align import align
    from glowcore.ops.paste import paste_mask

    aligned = align(photo_array, glowcore.load_model(tiny_model, device="cpu").config.image_size)
    outside = paste_mask(aligned) == 0  # beyond the (spread) change's reach
    assert outside.mean() > 0.25 and np.array_equal(saved[outside], photo_array[outside])
    for region in (np.s_[:, :40], np.s_[:, -40:]):  # the background, far from the face
        assert np.array_equal(saved[region], photo_array[region])
    np.testing.assert_allclose(saved.astype(int), expected_composite(tiny_model, photo_array, {"Smiling": 1.5}).astype(int), atol=1)
    # back to no edit: the photo bit-identical everywhere
    win.attributes.row("Smiling").slider.setValue(0)
    wait_for_photo(qtbot, win)
    assert np.array_equal(qimage_to_array(win.photo_panel.view.image()), photo_array)


def test_save_defaults_to_the_photos_format_with_the_chosen_jpeg_quality(qtbot, window, photo_array, tmp_path):
    win = window
    src = tmp_path / "portrait.jpg"
    Image.fromarray(photo_array).save(src, quality=97)
    open_photo(qtbot, win, src)
    assert win.photo_ctl.default_name() == str(tmp_path / "portrait-edited.jpg")
    win.attributes.row("Young").slider.setValue(120)
    wait_for_photo(qtbot, win)
    sizes = {}
    for q in (40, 95):
        out = tmp_path / f"q{q}.jpg"
        win.photo_panel.quality.setValue(q)
        win.photo_ctl.save_photo_to(str(out))
        qtbot.waitUntil(lambda out=out: out.exists() and not win.jobs.pending, timeout=WAIT_MS)
        with Image.open(out) as im:
            assert im.format == "JPEG" and im.size == (W, H)
        sizes[q] = out.stat().st_size
    assert sizes[40] < sizes[95]  # the quality option reached the encoder


def test_saving_over_the_opened_photo_asks_first(qtbot, window, photo_png, monkeypatch):
    win = window
    open_photo(qtbot, win, photo_png)
    win.attributes.row("Smiling").slider.setValue(150)
    wait_for_photo(qtbot, win)
    data = photo_png.read_bytes()
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.No)
    assert win.photo_ctl.save_photo_to(str(photo_png)) == 0
    assert asked and photo_png.read_bytes() == data  # refused: the input is kept
    assert "original photo is kept" in win.message.text()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    win.photo_ctl.save_photo_to(str(photo_png))
    qtbot.waitUntil(lambda: photo_png.read_bytes() != data and not win.jobs.pending, timeout=WAIT_MS)
    with Image.open(photo_png) as im:
        assert im.size == (W, H)


def test_the_worker_refuses_to_overwrite_the_input_unless_confirmed(qtbot, window, photo_png):
    from explorer.protocol import SavePhoto

    win = window
    open_photo(qtbot, win, photo_png)
    data = photo_png.read_bytes()
    failed = []
    win.jobs.run(SavePhoto(win.state.snapshot(), str(photo_png)), on_fail=lambda msg, c: failed.append(msg))
    qtbot.waitUntil(lambda: bool(failed), timeout=WAIT_MS)
    assert "is the photo you opened" in failed[0] and photo_png.read_bytes() == data


def test_no_face_found_says_so_uses_the_centre_square_and_takes_a_drawn_box(qtbot, window, tmp_path, photo_array):
    win = window
    blank = photo_array.copy()
    blank[:] = np.linspace(40, 200, W, dtype=np.uint8)[None, :, None]  # a smooth wall: no face
    src = tmp_path / "wall.png"
    Image.fromarray(blank).save(src)
    open_photo(qtbot, win, src)
    ph = win.photo_ctl.photo
    assert not ph.found and win.message.kind == "error"
    assert "no face found" in win.message.text() and "centre square" in win.message.text()
    assert "\n" not in win.message.text()  # one line
    assert ph.box == ((W - H) / 2, 0, H, H)
    # draw a box on the photo: the face is aligned there
    view = win.photo_panel.view
    win.photo_panel.draw_box.click()
    assert view.box_mode
    a, b = view.from_photo(QPointF(150, 60)), view.from_photo(QPointF(330, 260))
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=a.toPoint())
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=b.toPoint())
    qtbot.waitUntil(lambda: win.photo_ctl.photo is not ph, timeout=WAIT_MS)
    got = win.photo_ctl.photo
    assert got.found and "face box given" in got.message
    np.testing.assert_allclose(got.box, (150, 60, 180, 200), atol=3)
    assert not view.box_mode and win.state.face.latent_id == got.latent_id


def test_a_photo_not_larger_than_the_model_is_a_face_only(qtbot, window, tmp_path, photo_array):
    win = window
    src = tmp_path / "small.png"
    Image.fromarray(photo_array[::24, ::30][:16, :16].copy()).save(src)  # 16x16: the model's size
    before = win.state.face
    win.open_photo(src)
    qtbot.waitUntil(lambda: win.state.face is not before and win.state.face.kind == "latent", timeout=WAIT_MS)
    assert win.photo_ctl.photo is None and not win.photo_panel.isVisible()


def test_the_exif_orientation_is_applied_and_the_photo_follows_its_face(qtbot, window, tmp_path, photo_array):
    win = window
    src = tmp_path / "turned.jpg"
    stored = Image.fromarray(photo_array).transpose(Image.Transpose.ROTATE_90)  # as a camera held upright stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    stored.save(src, quality=95, exif=exif.tobytes())
    open_photo(qtbot, win, src)
    ph = win.photo_ctl.photo
    assert ph.size == (W, H) and ph.found  # upright, and the face is found
    out = tmp_path / "turned-edited.jpg"
    win.attributes.row("Smiling").slider.setValue(100)
    wait_for_photo(qtbot, win)
    win.photo_ctl.save_photo_to(str(out))
    qtbot.waitUntil(lambda: out.exists() and not win.jobs.pending, timeout=WAIT_MS)
    with Image.open(out) as im:
        assert im.size == (W, H) and im.getexif().get(0x0112, 1) == 1  # upright pixels, no turn left to apply
    # another face hides the photo; undo comes back to it
    win.act_new.trigger()
    wait_settled(qtbot, win)
    assert not win.photo_panel.isVisible()
    while win.state.face.latent_id != ph.latent_id and win.state.can_undo:
        win.act_undo.trigger()
    wait_for_photo(qtbot, win)
    assert win.photo_panel.isVisible()


def test_compare_splits_the_whole_photo_into_before_and_after(qtbot, window, photo_png, photo_array):
    win = window
    win.resize(1500, 900)
    open_photo(qtbot, win, photo_png)
    win.attributes.row("Smiling").slider.setValue(200)
    wait_for_photo(qtbot, win)
    view = win.photo_panel.view
    after = view.grab().toImage()
    win.act_compare.trigger()
    assert view.compare == "split"
    wait_for_photo(qtbot, win)
    split = view.grab().toImage()
    a, s = qimage_to_array(after), qimage_to_array(split)
    r = view.image_rect()
    x0, x1 = int(r.left()) + 2, int(r.center().x()) - 4
    y0, y1 = int(r.top()) + 30, int(r.bottom()) - 2  # below the labels
    assert np.abs(a[y0:y1, x0:x1].astype(int) - s[y0:y1, x0:x1]).max() > 10  # the left half shows the photo before
    xr0, xr1 = int(r.center().x()) + 4, int(r.right()) - 2
    assert np.array_equal(a[y0:y1, xr0:xr1], s[y0:y1, xr0:xr1])  # the right half, after, as it was


def test_a_save_asked_for_just_before_another_photo_opens_saves_the_first(qtbot, window, photo_png, photo_array, tmp_path):
    """(Found by the monkey test.) Save is queued behind the opening of another photo: it still
    writes the photo that was on screen when Save was asked for."""
    win = window
    open_photo(qtbot, win, photo_png)
    win.attributes.row("Smiling").slider.setValue(150)
    wait_for_photo(qtbot, win)
    shown = qimage_to_array(win.photo_panel.view.image())
    other = tmp_path / "other.png"
    Image.fromarray(photo_array).resize((400, 300)).save(other)
    first = win.photo_ctl.photo
    win.open_photo(other)  # queued first
    out = tmp_path / "first-edited.png"
    win.photo_ctl.save_photo_to(str(out))  # queued after it
    qtbot.waitUntil(lambda: out.exists() and not win.jobs.pending, timeout=WAIT_MS)
    assert win.photo_ctl.photo is not first and win.photo_ctl.photo.size == (400, 300)
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), shown)


def test_the_zoom_keys_zoom_the_photo_while_one_is_shown(qtbot, window, photo_png):
    win = window
    open_photo(qtbot, win, photo_png)
    view = win.photo_panel.view
    fitted = view.image_rect()
    win.act_zoom_in.trigger()
    assert view.zoom == pytest.approx(1.25) and view.image_rect().width() > fitted.width()
    win.act_fit.trigger()
    assert view.zoom == 1.0 and view.image_rect() == fitted


def test_a_photo_shown_reduced_is_composited_at_the_display_resolution_until_zoomed_in(qtbot, window, photo_array, tmp_path, tiny_model):
    win = window
    src = tmp_path / "large.png"
    large = np.asarray(Image.fromarray(photo_array).resize((W * 4, H * 4), Image.Resampling.BICUBIC))
    Image.fromarray(large).save(src)
    open_photo(qtbot, win, src)
    view = win.photo_panel.view
    assert view.display_scale() < 0.5  # 1920 px shown in a few hundred
    win.attributes.row("Smiling").slider.setValue(150)
    wait_for_photo(qtbot, win)
    assert view.patch_scale() < 0.8  # pasted at the display's resolution: fewer pixels to paste
    for _ in range(8):  # zoom in until a photo pixel takes more than 2/3 of a screen pixel
        win.act_zoom_in.trigger()
    assert view.display_scale() >= 0.67
    qtbot.waitUntil(lambda: view.patch_scale() == 1.0 and win.photo_ctl.settled(), timeout=WAIT_MS)
    # Save is at full resolution whatever the view shows
    out = tmp_path / "large-edited.png"
    win.photo_ctl.save_photo_to(str(out))
    qtbot.waitUntil(lambda: out.exists() and not win.jobs.pending, timeout=WAIT_MS)
    saved = np.asarray(Image.open(out).convert("RGB"))
    assert saved.shape == large.shape
    np.testing.assert_allclose(saved.astype(int), expected_composite(tiny_model, large, {"Smiling": 1.5}).astype(int), atol=1)


def test_with_two_faces_the_largest_is_used_and_a_click_on_the_other_edits_that_one(qtbot, window, tmp_path):
    import torch

    import glowcore

    m = glowcore.load_model(None, device="cpu")
    with torch.inference_mode():
        faces = glowcore.to_uint8(m.decode(m.sample_latent(2, 0.6, seed=1)))
    rng = np.random.default_rng(1)
    photo = np.clip(rng.normal(120, 15, (360, 640, 3)), 0, 255).astype(np.uint8)
    for face, (x, y, s) in zip(faces, [(40, 60, 220), (400, 120, 170)]):
        photo[y : y + s, x : x + s] = np.asarray(Image.fromarray(face).resize((s, s), Image.Resampling.BICUBIC))
    src = tmp_path / "two.png"
    Image.fromarray(photo).save(src)
    win = window
    open_photo(qtbot, win, src)
    ph, view = win.photo_ctl.photo, win.photo_panel.view
    assert len(ph.faces) == 2 and ph.face_index == 0 and "2 faces" in ph.message
    assert ph.box[0] < 320  # the largest, on the left
    other = ph.faces[1]
    at = view.from_photo(QPointF(other[0] + other[2] / 2, other[1] + other[3] / 2))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=at.toPoint())
    qtbot.waitUntil(lambda: win.photo_ctl.photo is not ph, timeout=WAIT_MS)
    got = win.photo_ctl.photo
    assert got.face_index == 1 and got.box[0] > 320 and win.state.face.latent_id == got.latent_id


def test_a_morph_exported_from_a_photo_carries_its_detail_at_the_chosen_size(tiny_model, photo_png, tmp_path):
    """Issue #14 item 4 in the window: ×4 of the 16-px model = 64-px frames; the frame at a photo
    keyframe (also one made from the photo with an edit) is the photo's own aligned face."""
    from explorer.engine import Engine
    from explorer.protocol import ExportParams, InterpParams
    from explorer.state import FaceRef, Snapshot
    from glowcore.ops.align import render_face
    from glowcore.ops.video import probe_video

    eng = Engine(device="cpu", threads=1)
    eng.open_model(str(tiny_model))
    ph = eng.open_photo(str(photo_png), "portrait")
    edited_id, _ = eng.materialize(Snapshot(FaceRef("latent", latent_id=ph.latent_id), amounts=()))
    seed_id = eng.store(eng.model.sample_latent(1, 0.7, seed=3))
    want = render_face(ph.array, ph.aligned.transform, 64).astype(float)

    def first_frame(keys, detail):
        out = tmp_path / f"m{len(keys)}{detail}.webp"
        msg = eng.export(keys, InterpParams(frames=4), ExportParams(scale=4, detail=detail), str(out))
        with Image.open(out) as im:
            frame = np.asarray(im.convert("RGB"), dtype=float)
        assert probe_video(out).width == 64
        return msg, np.abs(frame - want).mean()

    msg, err = first_frame([ph.latent_id, seed_id], True)
    assert "detail of 1 photo" in msg and err < 4  # the photo itself (WebP is lossy)
    msg, err_plain = first_frame([ph.latent_id, seed_id], False)
    assert "detail" not in msg and err_plain > 2 * err  # the model's 16-px face enlarged
    msg, _ = first_frame([edited_id, seed_id, ph.latent_id], True)
    assert "detail of 2 photo" in msg
    msg, _ = first_frame([seed_id, eng.store(eng.model.sample_latent(1, 0.7, seed=4))], True)
    assert "detail" not in msg  # no photo among the keyframes: plain enlargement


def test_spread_continues_the_edit_past_the_frame_on_screen_and_in_the_saved_photo(qtbot, window, photo_png, photo_array, tiny_model, tmp_path):
    import glowcore
    from glowcore.ops.paste import edit_photo, paste_mask

    win = window
    assert win.photo_panel.spread.isChecked()  # the default
    open_photo(qtbot, win, photo_png)
    win.attributes.row("Smiling").slider.setValue(150)
    wait_for_photo(qtbot, win)
    spread = qimage_to_array(win.photo_panel.view.image())
    m = glowcore.load_model(tiny_model, device="cpu")
    want, aligned = edit_photo(m, photo_array, {"Smiling": 1.5}, spread=True)
    np.testing.assert_allclose(spread.astype(int), want.astype(int), atol=1)
    reach = paste_mask(aligned, spread=True) > 0
    assert np.array_equal(spread[~reach], photo_array[~reach])  # beyond its reach: the photo's own pixels
    out = tmp_path / "spread.png"
    win.photo_ctl.save_photo_to(str(out))
    qtbot.waitUntil(lambda: out.exists() and not win.jobs.pending, timeout=WAIT_MS)
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), spread)
    before = win.photo_ctl.composite_stamp
    win.photo_panel.spread.setChecked(False)  # the face mask: asks for a new composite at once
    qtbot.waitUntil(lambda: win.photo_ctl.composite_stamp > before, timeout=WAIT_MS)
    wait_for_photo(qtbot, win)
    masked = qimage_to_array(win.photo_panel.view.image())
    want_masked, _ = edit_photo(m, photo_array, {"Smiling": 1.5}, spread=False)
    np.testing.assert_allclose(masked.astype(int), want_masked.astype(int), atol=1)
    assert (np.abs(spread.astype(int) - masked.astype(int)).sum(2) > 0).any()
    out2 = tmp_path / "masked.png"
    win.photo_ctl.save_photo_to(str(out2))
    qtbot.waitUntil(lambda: out2.exists() and not win.jobs.pending, timeout=WAIT_MS)
    assert np.array_equal(np.asarray(Image.open(out2).convert("RGB")), masked)
    win.photo_panel.spread.setChecked(True)
    qtbot.waitUntil(lambda: win.photo_ctl.composite_stamp > before + 1, timeout=WAIT_MS)
    wait_for_photo(qtbot, win)
    assert np.array_equal(qimage_to_array(win.photo_panel.view.image()), spread)  # back to the spread, nothing left over