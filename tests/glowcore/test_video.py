"""Video export: files read back with the right frame count, size and fps; atomic on cancel."""

import os

import av
import numpy as np
import pytest
import torch

from glowcore.base.progress import CancelToken, Cancelled
from glowcore.ops.video import export_video, probe_video, render_morph, upscale

from .latent_helpers import untrained_model


def moving_square(n: int, h: int = 16, w: int = 16) -> list[np.ndarray]:
    """Frames with a white square moving on a coloured background (all frames distinct)."""
    frames = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[..., 0] = 40 + 10 * i
        f[..., 2] = 120
        x = i % (w - 4)
        f[4:8, x : x + 4] = 255
        frames.append(f)
    return frames


def leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".webp"])
def test_formats_read_back_with_frames_size_and_fps(tmp_path, suffix):
    path = tmp_path / f"clip{suffix}"
    out = export_video(moving_square(12), path, fps=30, scale=2)
    assert out == path
    info = probe_video(path)
    assert (info.frames, info.width, info.height) == (12, 32, 32)
    assert info.fps == pytest.approx(30.0, rel=1e-3)
    assert leftovers(tmp_path) == [path.name]


def test_mp4_is_h264_yuv420p_and_decodes_to_the_frames(tmp_path):
    frames = moving_square(10)
    path = export_video(frames, tmp_path / "c.mp4", fps=25, scale=4, filter="nearest")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 10
    expected = upscale(frames[5], 4, "nearest").astype(float)
    assert np.abs(decoded[5].astype(float) - expected).mean() < 6.0


def test_mp4_with_odd_size_and_fractional_fps(tmp_path):
    frames = [np.full((13, 15, 3), 10 * i, np.uint8) for i in range(7)]
    path = export_video(frames, tmp_path / "odd.mp4", fps=29.97, scale=1)
    info = probe_video(path)
    assert (info.frames, info.width, info.height) == (7, 16, 14)  # padded to even by one edge pixel
    assert info.fps == pytest.approx(29.97, rel=1e-4)


def test_tensor_frames_gray_frames_and_generators_with_progress(tmp_path):
    calls = []
    t = torch.rand(6, 3, 8, 8)
    export_video(t, tmp_path / "t.webp", fps=12, scale=3, progress=lambda d, n, m: calls.append((d, n)))
    assert probe_video(tmp_path / "t.webp").frames == 6
    assert calls[-1] == (6, 6) and [c[0] for c in calls] == list(range(1, 7))
    gray = (np.full((8, 8), 30 * i, np.uint8) for i in range(5))
    calls.clear()
    export_video(gray, tmp_path / "g.mp4", fps=10, scale=2, total=5, progress=lambda d, n, m: calls.append((d, n)))
    info = probe_video(tmp_path / "g.mp4")
    assert (info.frames, info.width) == (5, 16)
    assert calls[-1] == (5, 5)


def test_upscale_filters():
    frame = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3) * 5
    near = upscale(frame, 3, "nearest")
    assert near.shape == (12, 12, 3)
    assert np.array_equal(near[::3, ::3], frame) and np.array_equal(near[1::3, 2::3], frame)
    smooth = upscale(frame, 3, "smooth")
    assert smooth.shape == (12, 12, 3) and not np.array_equal(smooth, near)
    with pytest.raises(ValueError, match="filter"):
        upscale(frame, 2, "blocky")


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".webp"])
def test_cancel_leaves_no_file_and_keeps_an_existing_one(tmp_path, suffix):
    token = CancelToken()

    def progress(done, total, message):
        if done == 3:
            token.cancel()

    path = tmp_path / f"c{suffix}"
    with pytest.raises(Cancelled):
        export_video(moving_square(10), path, fps=10, scale=2, progress=progress, cancel=token)
    assert leftovers(tmp_path) == []
    path.write_bytes(b"previous")
    token2 = CancelToken()
    token2.cancel()
    with pytest.raises(Cancelled):
        export_video(moving_square(4), path, fps=10, cancel=token2)
    assert path.read_bytes() == b"previous" and leftovers(tmp_path) == [path.name]


def test_errors_leave_no_file(tmp_path):
    frames = moving_square(3) + [np.zeros((8, 8, 3), np.uint8)]
    for suffix in (".mp4", ".gif"):
        with pytest.raises(ValueError, match="same size"):
            export_video(frames, tmp_path / f"bad{suffix}", fps=10)
    assert leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="suffix"):
        export_video(moving_square(2), tmp_path / "clip.avi")
    with pytest.raises(ValueError, match="50 fps"):
        export_video(moving_square(2), tmp_path / "fast.gif", fps=60)
    with pytest.raises(ValueError, match="no frames"):
        export_video([], tmp_path / "empty.mp4")
    with pytest.raises(ValueError, match="uint8"):
        export_video([np.zeros((4, 4, 3), np.float32)], tmp_path / "f.webp")
    assert leftovers(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        probe_video(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match="junk.mp4"):
        probe_video(tmp_path / "junk.mp4")


def test_render_morph_writes_every_frame(tmp_path):
    model = untrained_model()
    keys = model.sample_latent(3, 0.7, seed=1)
    calls = []
    path = render_morph(model, keys, tmp_path / "m.gif", frames=10, fps=20, mode="slerp", ease="smooth", scale=2,
                        filter="nearest", progress=lambda d, n, m: calls.append(d))
    info = probe_video(path)
    assert (info.frames, info.width, info.height) == (10, 32, 32)
    assert info.fps == pytest.approx(20.0, rel=1e-3)
    assert calls[-1] == 10
