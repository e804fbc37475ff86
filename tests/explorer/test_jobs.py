"""Long jobs in the explorer: inpainting with a painted mask, morph export, cancel, closing mid-job,
custom and principal directions."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from explorer.protocol import ExportParams, InpaintParams
from explorer.qimage import qimage_to_array

from .conftest import WAIT_MS, canvas_array, wait_settled


def drag(qtbot, canvas, points_img: list[tuple[float, float]]) -> None:
    """Press at the first point (picture coordinates), move through the others, release."""
    pts = [canvas.from_image(QPointF(x, y)) for x, y in points_img]
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=pts[0])
    for p in pts[1:]:
        qtbot.mouseMove(canvas, pos=p)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=pts[-1])


def test_painted_mask_changes_only_masked_pixels(qtbot, window):
    win = window
    win.canvas.resize(400, 400)
    win.tools_dock.show()
    win.tools.setCurrentWidget(win.inpaint)
    assert win.canvas.mask_mode
    win.inpaint.size.setValue(3)
    drag(qtbot, win.canvas, [(4.5, 8.5), (8.5, 8.5), (11.5, 9.5)])
    drag(qtbot, win.canvas, [(8.5, 3.5), (8.5, 5.5)])
    mask = win.canvas.mask_array()
    assert 10 < mask.sum() < 120  # two strokes, not the whole picture
    assert mask[8, 6] and mask[4, 8] and not mask[0, 0] and not mask[15, 15]
    # the eraser removes part of it
    win.inpaint.eraser.setChecked(True)
    drag(qtbot, win.canvas, [(8.5, 3.5), (8.5, 3.6)])
    assert not win.canvas.mask_array()[3, 8]
    win.inpaint.brush.setChecked(True)
    mask = win.canvas.mask_array()
    original = canvas_array(win)

    win.inpaint.candidates.setValue(3)
    win.inpaint.steps.setValue(5)
    win.inpaint.run.click()
    qtbot.waitUntil(lambda: win.inpaint.results.count() == 3, timeout=WAIT_MS)
    for img in win.inpaint.results.images():
        cand = qimage_to_array(img)
        assert np.array_equal(cand[~mask], original[~mask]), "pixels outside the mask changed"
        assert not np.array_equal(cand[mask], original[mask]), "nothing was filled in"
    # pick the second one: it becomes the current face, exactly
    chosen = qimage_to_array(win.inpaint.results.images()[1])
    win.inpaint.results.setCurrentRow(1)
    win.inpaint.use.click()
    qtbot.waitUntil(lambda: win.state.face.kind == "latent", timeout=WAIT_MS)
    wait_settled(qtbot, win)
    assert np.abs(canvas_array(win).astype(int) - chosen.astype(int)).max() <= 1
    win.inpaint.invert.click()
    assert np.array_equal(win.canvas.mask_array(), ~mask)
    win.inpaint.clear.click()
    assert not win.canvas.mask_array().any()


def _two_keyframes(qtbot, win) -> None:
    win.morph_ctl.add_current_keyframe()
    qtbot.waitUntil(lambda: win.interpolate.keyframes.count() == 1, timeout=WAIT_MS)
    win.seed_spin.setValue(99)
    wait_settled(qtbot, win)
    win.morph_ctl.add_current_keyframe()
    qtbot.waitUntil(lambda: win.interpolate.keyframes.count() == 2, timeout=WAIT_MS)


def test_interpolation_preview_filmstrip_and_export(qtbot, window, tmp_path):
    from glowcore.ops.video import probe_video

    win = window
    first = canvas_array(win)
    _two_keyframes(qtbot, win)
    win.interpolate.frames.setValue(9)
    qtbot.waitUntil(lambda: win.interpolate.filmstrip.count() == 9, timeout=WAIT_MS)
    win.interpolate.scrub.setValue(0)
    win.interpolate.scrub.setValue(8)
    qtbot.waitUntil(lambda: win.interpolate.frame_label.text() == "9 / 9", timeout=WAIT_MS)
    win.interpolate.scrub.setValue(0)
    qtbot.waitUntil(lambda: win.interpolate.frame_label.text() == "1 / 9", timeout=WAIT_MS)
    assert np.array_equal(qimage_to_array(win.interpolate.preview.image()), first)  # frame 0 is keyframe 0

    out = tmp_path / "morph.mp4"
    win.morph_ctl.export_video(str(out), ExportParams(fps=12, scale=2, filter="nearest"))
    qtbot.waitUntil(lambda: "wrote" in win.message.text().lower(), timeout=WAIT_MS)
    info = probe_video(out)
    assert (info.frames, info.width, info.height) == (9, 32, 32)
    assert info.fps == pytest.approx(12, rel=0.01)


def test_cancelling_an_export_leaves_no_file(qtbot, window, tmp_path):
    win = window
    _two_keyframes(qtbot, win)
    win.interpolate.frames.setValue(2000)
    out_dir = tmp_path / "videos"
    out_dir.mkdir()
    progress = []
    win.worker.progress.connect(lambda *a: progress.append(a))
    job = win.morph_ctl.export_video(str(out_dir / "long.mp4"), ExportParams(fps=24, scale=8))
    qtbot.waitUntil(lambda: win.jobbar.job_id == job and len(progress) > 0, timeout=WAIT_MS)
    assert win.jobbar.isVisible()
    win.jobbar.cancel.click()
    qtbot.waitUntil(lambda: "cancelled" in win.message.text(), timeout=WAIT_MS)
    assert not win.jobbar.isVisible()
    assert list(out_dir.iterdir()) == []  # neither the video nor a temporary file
    # still usable
    win.act_new.trigger()
    wait_settled(qtbot, win)


def test_closing_during_a_long_job_stops_the_worker(qtbot, make_window, tiny_model):
    win = make_window(tiny_model)
    win.tools.setCurrentWidget(win.inpaint)
    win.canvas.set_mask_array(np.eye(16, dtype=bool))
    started = []
    win.worker.progress.connect(lambda *a: started.append(a))
    win.inpaint_ctl.run(InpaintParams(candidates=2, steps=1_000_000, temperature=0.7, seed=0))
    qtbot.waitUntil(lambda: len(started) > 0, timeout=WAIT_MS)
    assert win.worker.busy_command is not None and win.worker.busy_command[1].kind == "inpaint"
    win.close()
    assert win.host.finished  # the job was cancelled and the thread ended: closing did not hang


def test_custom_direction_from_tagged_faces_and_principal_directions(qtbot, window):
    win = window
    win.directions.name.setText("My trait")
    for seed, positive in ((1, True), (2, True), (3, False), (4, False)):
        win.seed_spin.setValue(seed)
        wait_settled(qtbot, win)
        win.directions_ctl.tag_current(positive)
    qtbot.waitUntil(lambda: win.directions.positives.count() == 2 and win.directions.negatives.count() == 2, timeout=WAIT_MS)
    assert win.directions.create.isEnabled()
    win.directions.create.click()
    qtbot.waitUntil(lambda: "My trait" in win.attributes.rows, timeout=WAIT_MS)
    assert win.state.direction("My trait").group == "custom"
    before = canvas_array(win)
    win.attributes.row("My trait").slider.setValue(100)
    wait_settled(qtbot, win)
    assert not np.array_equal(canvas_array(win), before)

    win.directions.k.setValue(2)
    win.directions.samples.setValue(16)
    win.directions.compute.click()
    qtbot.waitUntil(lambda: "pc2" in win.attributes.rows, timeout=WAIT_MS)
    assert win.state.direction("pc1").group == "principal"
    assert win.state.amount("My trait") == 1.0  # edits survive new directions
