"""Video export: MP4 (H.264 via PyAV, which ships FFmpeg), GIF and animated WebP (Pillow).

Frames are upscaled (64x64 is tiny) by an integer factor with a smooth (bicubic) or nearest
filter. Files are written atomically: a temporary file beside the target, renamed on success, so
cancelling or an error never leaves a half-written file (and an existing file stays as it was).

Format notes:

* MP4: H.264 High profile, ``yuv420p`` (what every player takes), CRF 18, ``+faststart``. H.264
  with 4:2:0 chroma needs even sizes: an odd width or height gets one more column or row,
  repeating the edge pixels. The frame rate may be fractional (29.97).
* GIF: 256-colour palette per frame; delays are stored in 1/100 s, so the delays alternate (e.g.
  30, 30, 40 ms at 30 fps) to keep the average frame rate exact. Most viewers play delays under
  20 ms at 100 ms, so GIF refuses frame rates above 50 fps.
* WebP: lossy (quality 90) or lossless; delays in whole milliseconds, alternated like GIF's.
* GIF and WebP writers merge identical consecutive frames into one longer frame (the playing time
  is unchanged; :func:`probe_video` then counts fewer frames).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from ..io.fileio import atomic_path, check_writable
from ..base.limits import MAX_FPS, MIN_FPS, number_in
from ..base.progress import CancelToken, ProgressFn, check_cancel, report

__all__ = ["FORMATS", "FILTERS", "VideoInfo", "upscale", "export_video", "render_morph", "probe_video"]

FORMATS = {".mp4": "mp4", ".gif": "gif", ".webp": "webp"}
FILTERS = ("smooth", "nearest")


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` reads back from a file."""

    frames: int
    width: int
    height: int
    fps: float


def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        fmt = format.lower().lstrip(".")
        if fmt not in FORMATS.values():
            raise ValueError(f"unknown video format {format!r}; use one of {', '.join(FORMATS.values())}")
        return fmt
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: cannot tell the video format from the suffix {path.suffix!r}; use .mp4, .gif or .webp")
    return fmt


def _as_hwc(frame) -> np.ndarray:
    """One frame -> uint8 (H, W, 3)."""
    if isinstance(frame, Tensor):
        t = frame.detach()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3:
            raise ValueError(f"a frame tensor must be (C, H, W), got shape {tuple(frame.shape)}")
        if t.dtype != torch.uint8:
            t = torch.nan_to_num(t.float(), nan=0.0).clamp(0, 1).mul(255).round().to(torch.uint8)
        arr = t.permute(1, 2, 0).cpu().numpy()
    else:
        arr = np.asarray(frame)
        if arr.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 arrays (H, W, C), got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"a frame must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"empty frame of shape {arr.shape}")
    return np.ascontiguousarray(arr)


def upscale(frame: np.ndarray, scale: int, filter: str = "smooth") -> np.ndarray:
    """Upscale a uint8 (H, W, 3) frame by an integer factor: bicubic (``smooth``) or ``nearest``."""
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {', '.join(FILTERS)}, got {filter!r}")
    if scale == 1:
        return frame
    if filter == "nearest":
        return frame.repeat(scale, axis=0).repeat(scale, axis=1)
    from PIL import Image

    h, w = frame.shape[:2]
    return np.asarray(Image.fromarray(frame).resize((w * scale, h * scale), Image.Resampling.BICUBIC))


def _iter_frames(frames) -> tuple[Iterator, int | None]:
    """Normalise the accepted frame containers to an iterator (and its length when known)."""
    if isinstance(frames, Tensor):
        if frames.ndim != 4:
            raise ValueError(f"a frame tensor must be (N, C, H, W), got shape {tuple(frames.shape)}")
        return iter(frames), int(frames.shape[0])
    if isinstance(frames, np.ndarray):
        if frames.ndim not in (3, 4):
            raise ValueError(f"a frame array must be (N, H, W, C) or (N, H, W), got shape {frames.shape}")
        return iter(frames), int(frames.shape[0])
    try:
        n = len(frames)  # type: ignore[arg-type]
    except TypeError:
        n = None
    return iter(frames), n


def _durations_ms(n: int, fps: float, unit_ms: int) -> list[int]:
    """Per-frame delays in multiples of ``unit_ms`` whose running sum tracks ``i * 1000 / fps``."""
    frame_ms = 1000.0 / fps
    ends = [round((i + 1) * frame_ms / unit_ms) * unit_ms for i in range(n)]
    out, prev = [], 0
    for e in ends:
        out.append(max(unit_ms, e - prev))
        prev = max(e, prev + unit_ms)
    return out


def _even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frame


def _write_mp4(tmp: Path, frames: Iterator[np.ndarray], fps: float, crf: int) -> int:
    import av

    rate = Fraction(fps).limit_denominator(1001)
    count = 0
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = None
        for frame in frames:
            frame = _even(frame)
            if stream is None:
                stream = container.add_stream("libx264", rate=rate)
                stream.width = frame.shape[1]
                stream.height = frame.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": "medium"}
                size = frame.shape[:2]
            elif frame.shape[:2] != size:
                raise ValueError(f"all frames must have the same size: frame {count} is {frame.shape[1]}x{frame.shape[0]}, the first was {size[1]}x{size[0]}")
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            for packet in stream.encode(vf):
                container.mux(packet)
            count += 1
        if stream is None:
            raise ValueError("no frames to write")
        for packet in stream.encode():
            container.mux(packet)
    return count


def _write_pillow(tmp: Path, fmt: str, frames: list[np.ndarray], make: Iterator, fps: float, quality: int, lossless: bool) -> int:
    from PIL import Image

    n = len(frames)
    if fmt == "gif":
        durations = _durations_ms(n, fps, 10)
    else:
        durations = _durations_ms(n, fps, 1)
    if fmt == "gif":  # a 256-colour palette per frame (fast octree, dithered): 250x faster than Pillow's default
        images = (Image.fromarray(f).quantize(256, method=Image.Quantize.FASTOCTREE) for f in make)
    else:
        images = (Image.fromarray(f) for f in make)
    first = next(images)
    rest = list(images) if fmt == "gif" else images  # GIF's writer needs them all anyway
    if fmt == "gif":
        first.save(tmp, format="GIF", save_all=True, append_images=rest, duration=durations, loop=0, optimize=False, disposal=1)
    else:
        first.save(tmp, format="WEBP", save_all=True, append_images=rest, duration=durations, loop=0, quality=quality, lossless=lossless, method=4)
    return n


def export_video(
    frames: Iterable[np.ndarray] | Tensor | np.ndarray,
    path: str | os.PathLike,
    fps: float = 30,
    scale: int = 4,
    filter: str = "smooth",
    format: str | None = None,
    total: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    *,
    crf: int = 18,
    quality: int = 90,
    lossless: bool = False,
) -> Path:
    """Write frames to an MP4, GIF or animated WebP file (format from the suffix, or ``format``).

    ``frames``: uint8 arrays ``(H, W, 3)`` (or gray / RGBA), a uint8 array ``(N, H, W, C)``, a float
    tensor ``(N, C, H, W)`` in [0, 1], or any iterable of frames (``total`` gives its length for
    progress). ``scale`` upscales with ``filter`` (``"smooth"``: bicubic, ``"nearest"``: blocky).
    ``progress(done, total, message)`` is called per frame; ``cancel`` stops the export and no file
    is left behind. An existing file at ``path`` is replaced atomically when the export succeeds
    and left as it was otherwise; a missing or unwritable folder, or a ``path`` that is a folder,
    raises ``OSError`` naming it before any frame is rendered. Returns the path written.
    """
    path = Path(path)
    fmt = _format_of(path, format)
    check_writable(path)  # before any frame is rendered: a missing or unwritable folder, a folder
    fps = number_in("fps", fps, MIN_FPS, MAX_FPS)  # far outside, MP4 time stamps collapse (every dts 0)
    if fmt == "gif" and fps > 50:
        raise ValueError(f"GIF cannot play faster than 50 fps in most viewers (asked for {fps:g}); use MP4 or WebP")
    if not isinstance(scale, (int, np.integer)) or not 1 <= scale <= 64:
        raise ValueError(f"scale must be an integer from 1 to 64, got {scale!r}")
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {', '.join(FILTERS)}, got {filter!r}")
    it, n = _iter_frames(frames)
    if total is None:
        total = n
    if fmt != "mp4":  # Pillow needs the frame count for the delays: collect the (small) frames first
        raw = []
        for f in it:
            check_cancel(cancel)
            raw.append(_as_hwc(f))
        if not raw:
            raise ValueError("no frames to write")
        it, total = iter(raw), len(raw)
    count_total = total or 0

    def produce() -> Iterator[np.ndarray]:
        size = None
        for i, f in enumerate(it):
            check_cancel(cancel)
            arr = _as_hwc(f)
            if size is None:
                size = arr.shape
            elif arr.shape != size:
                raise ValueError(f"all frames must have the same size: frame {i} is {arr.shape[1]}x{arr.shape[0]}, the first was {size[1]}x{size[0]}")
            yield upscale(arr, int(scale), filter)
            report(progress, i + 1, max(count_total, i + 1), f"writing {fmt.upper()}")

    with atomic_path(path) as tmp:
        if fmt == "mp4":
            _write_mp4(tmp, produce(), float(fps), crf)
        else:
            _write_pillow(tmp, fmt, raw, produce(), float(fps), quality, lossless)
        check_cancel(cancel)
    return path


def render_morph(
    model,
    keyframes,
    path: str | os.PathLike,
    frames: int = 60,
    fps: float = 30,
    mode: str = "slerp",
    ease: str = "smooth",
    loop: bool = False,
    pingpong: bool = False,
    scale: int = 4,
    filter: str = "smooth",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    *,
    batch_size: int = 16,
    format: str | None = None,
    crf: int = 18,
    size: int | None = None,
    details: Sequence[np.ndarray | None] | None = None,
) -> Path:
    """Decode an interpolation through ``keyframes`` (a :class:`~glowcore.model.Latent`) and write
    it as a video; decoding runs in batches as the encoder consumes frames.

    ``size``: frames of ``size`` x ``size`` px instead of ``scale`` times the model's, with
    ``details[k]`` (from :func:`glowcore.ops.morphsize.photo_keyframe`, None for a keyframe that is
    not a photo) added near keyframe ``k`` (see :mod:`glowcore.ops.morphsize`)."""
    from .interpolate import interpolate, interpolation_times

    path = Path(path)
    _format_of(path, format)  # fail fast on a bad suffix
    if size is not None:
        from .morphsize import check_size

        size = check_size(size)
    path_latents = interpolate(keyframes, frames, mode=mode, ease=ease, loop=loop, pingpong=pingpong)
    n = path_latents.batch_size

    def decoded() -> Iterator[np.ndarray]:
        from ..base.images import to_uint8

        for start in range(0, n, batch_size):
            check_cancel(cancel)
            imgs = to_uint8(model.decode(path_latents[start : start + batch_size]))
            yield from imgs

    if size is None:
        return export_video(decoded(), path, fps=fps, scale=scale, filter=filter, format=format, total=n, progress=progress, cancel=cancel, crf=crf)
    from .morphsize import sized_frames

    src, dst, u = interpolation_times(keyframes.batch_size, frames, ease, loop, pingpong)
    sized = sized_frames(decoded(), src, dst, u, list(details or []), size)
    return export_video(sized, path, fps=fps, scale=1, format=format, total=n, progress=progress, cancel=cancel, crf=crf)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read back a video's frame count, size and frame rate (MP4 via PyAV; GIF/WebP via Pillow)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt in ("gif", "webp"):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                width, height = im.size
                n = getattr(im, "n_frames", 1)
                total_ms = 0
                for i in range(n):
                    im.seek(i)
                    im.load()  # WebP fills in the frame's duration when it is decoded
                    total_ms += int(im.info.get("duration", 0) or 0)
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"{path}: not a readable {fmt.upper()} ({e})") from None
        fps = n * 1000.0 / total_ms if total_ms > 0 else 0.0
        return VideoInfo(n, width, height, fps)
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            n = int(stream.frames or 0)
            if n == 0:
                n = sum(1 for _ in container.decode(stream))
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            return VideoInfo(n, int(stream.codec_context.width), int(stream.codec_context.height), float(rate) if rate else 0.0)
    except av.FFmpegError as e:  # type: ignore[attr-defined]
        raise ValueError(f"{path}: not a readable video ({e})") from None
