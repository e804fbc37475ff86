"""Shared pieces of the hardening tests: case counters, hypothesis settings, nasty inputs.

Every target counts the cases it ran in :data:`CASES`; ``conftest.py`` prints the counts at the end
of the session and writes them to ``$GLOW_FUZZ_REPORT`` (JSON) when that is set, which is how
``benchmarks/fuzz_long.py`` collects its figures. ``GLOW_FUZZ_SCALE`` multiplies every hypothesis
budget (1 in CI; the long run uses more) and, above 1, also turns off ``derandomize`` so that each
long run explores new inputs.
"""

from __future__ import annotations

import collections
import io
import os
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
from hypothesis import HealthCheck, settings

CASES: collections.Counter[str] = collections.Counter()

SCALE = float(os.environ.get("GLOW_FUZZ_SCALE", "1"))
LONG = SCALE > 1


def count(target: str, n: int = 1) -> None:
    """Record that ``target`` ran ``n`` more cases."""
    CASES[target] += n


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings: ``examples`` x ``GLOW_FUZZ_SCALE`` cases, no deadline (no timing
    assertions), no example database (nothing written into the repository), deterministic in CI."""
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        database=None,
        derandomize=not LONG,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )


# ----------------------------------------------------------------------------- image bytes
def encode(img, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def gradient_rgb(w: int = 48, h: int = 40) -> np.ndarray:
    """A smooth colour test picture (lossy formats keep it close)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // max(1, w - 1), yy * 255 // max(1, h - 1), (xx + yy) * 255 // max(1, w + h - 2)], -1).astype(np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int, rows: int = 2) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` 8-bit gray pixels but that holds only a
    couple of compressed rows (a decompression bomb's header, a few hundred bytes on disk)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * min(rows * (width + 1), 1 << 20), 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF0 frame header is patched to claim ``width`` x ``height``."""
    from PIL import Image

    data = bytearray(encode(Image.fromarray(gradient_rgb(16, 16)), "JPEG", quality=80))
    i = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, i + 5, height, width)
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    """A GIF whose logical screen and image descriptor claim ``width`` x ``height``."""
    from PIL import Image

    data = bytearray(encode(Image.fromarray(gradient_rgb(8, 8)).convert("P"), "GIF"))
    struct.pack_into("<HH", data, 6, width, height)
    i = data.index(b"\x2c")  # image descriptor
    struct.pack_into("<HH", data, i + 5, width, height)
    return bytes(data)


def tiff_with_tag_type(tag: int, kind: int) -> bytes:
    """A small TIFF whose IFD entry ``tag`` has its field type changed to ``kind`` (5 rational,
    12 double): Pillow then fails with ValueError or TypeError rather than its usual OSError."""
    from PIL import Image

    data = bytearray(encode(Image.fromarray(np.zeros((2, 3, 3), np.uint8)), "TIFF"))
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, entry)[0] == tag:
            struct.pack_into("<H", data, entry + 2, kind)
            return bytes(data)
    raise KeyError(tag)


def exif_with_orientation(orientation: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def valid_images() -> dict[str, tuple[bytes, np.ndarray, float]]:
    """Valid but unusual encodings of :func:`gradient_rgb`: name -> (file bytes, the RGB picture a
    loader must produce (before framing), tolerance in mean absolute gray levels)."""
    from PIL import Image

    rgb = gradient_rgb()
    im = Image.fromarray(rgb)
    gray = np.asarray(im.convert("L"))
    gray3 = np.repeat(gray[..., None], 3, -1)
    out: dict[str, tuple[bytes, np.ndarray, float]] = {}
    out["rgb.png"] = (encode(im, "PNG"), rgb, 0.5)
    out["rgb.jpg"] = (encode(im, "JPEG", quality=95), rgb, 4.0)
    out["rgb.webp"] = (encode(im, "WEBP", lossless=True), rgb, 0.5)
    out["gray_L.png"] = (encode(im.convert("L"), "PNG"), gray3, 0.5)
    g16 = (gray.astype(np.uint16) * 257)
    out["gray_I16.png"] = (encode(Image.fromarray(g16), "PNG"), gray3, 1.0)
    out["la.png"] = (encode(im.convert("LA"), "PNG"), gray3, 0.5)
    out["rgba_opaque.png"] = (encode(im.convert("RGBA"), "PNG"), rgb, 0.5)
    pal = im.quantize(256)
    out["palette.png"] = (encode(pal, "PNG"), np.asarray(pal.convert("RGB")), 0.5)
    cmyk = im.convert("CMYK")
    out["cmyk.jpg"] = (encode(cmyk, "JPEG", quality=95), np.asarray(cmyk.convert("RGB")), 5.0)
    # animated: the first frame counts
    frames = [im, Image.fromarray(255 - rgb), Image.fromarray(rgb[::-1].copy())]
    out["animated.webp"] = (encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=50), rgb, 0.5)
    out["animated.png"] = (encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50), rgb, 0.5)
    gif_frames = [f.convert("P", palette=Image.Palette.ADAPTIVE) for f in frames]
    out["animated.gif"] = (encode(gif_frames[0], "GIF", save_all=True, append_images=gif_frames[1:], duration=50), np.asarray(gif_frames[0].convert("RGB")), 1.0)
    # EXIF-rotated: stored sideways, the loader must turn it upright
    for orientation, stored in ((3, im.transpose(Image.Transpose.ROTATE_180)), (6, im.transpose(Image.Transpose.ROTATE_90)),
                                (8, im.transpose(Image.Transpose.ROTATE_270))):
        out[f"exif{orientation}.jpg"] = (encode(stored, "JPEG", quality=95, exif=exif_with_orientation(orientation)), rgb, 4.0)
    return out


def broken_images() -> dict[str, bytes]:
    """Files a loader must refuse with a clear message (name -> bytes)."""
    from PIL import Image

    im = Image.fromarray(gradient_rgb())
    png, jpg, webp = encode(im, "PNG"), encode(im, "JPEG"), encode(im, "WEBP")
    return {
        "zero.png": b"",
        "text.png": b"this is not an image\n",
        "html.jpg": b"<html><body>404 not found</body></html>",
        "png_header_only.png": png[:33],
        "png_half.png": png[: len(png) // 2],
        "jpg_soi_only.jpg": jpg[:2],
        "jpg_header_only.jpg": jpg[:200],
        "webp_half.webp": webp[: len(webp) // 2],
        "bomb_png_100000.png": png_claiming(100_000, 100_000),
        "bomb_png_20001.png": png_claiming(20_001, 20_001),
        "bomb_jpeg_60000.jpg": jpeg_claiming(60_000, 60_000),
        "bomb_gif_65535.gif": gif_claiming(65_535, 65_535),
        "png_zero_width.png": png_claiming(0, 10),
        # an IHDR chunk whose length field says 12 (Pillow raises a bare ValueError on open)
        "png_short_ihdr.png": png[:8] + b"\x00\x00\x00\x0c" + png[12:],
        "tiff_rational_width.tif": tiff_with_tag_type(256, 5),  # ValueError: Invalid dimensions
        "tiff_rational_offsets.tif": tiff_with_tag_type(273, 5),  # TypeError while decoding
        "tiff_double_offsets.tif": tiff_with_tag_type(273, 12),
        "tiff_bad_extents.tif": tiff_with_tag_type(278, 5),
    }


def truncation_points(n: int) -> list[int]:
    """Cut points that exercise every class of truncation of an ``n``-byte file: inside the magic
    number, just after it, in the header, in the body, one byte short."""
    pts = {0, 1, 2, 4, 7, 8, 12, 16, 24, 33, 50, 64, 100, n // 4, n // 2, (3 * n) // 4, n - 16, n - 2, n - 1}
    return sorted(p for p in pts if 0 <= p < n)


def write_file(folder: Path, name: str, data: bytes) -> Path:
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def assert_clear_error(exc: BaseException, where: str, allowed: tuple[type[BaseException], ...]) -> None:
    """``exc`` is one of the ``allowed`` types and its message names ``where``."""
    assert isinstance(exc, allowed), f"{type(exc).__name__}: {exc} (expected one of {[t.__name__ for t in allowed]})"
    assert where in str(exc), f"message does not name {where!r}: {exc}"


def run_clear(fn: Callable[[], object], where: str, allowed: tuple[type[BaseException], ...]):
    """Run ``fn``: return ``(result, None)`` on success, ``(None, exc)`` on a clear error; any other
    exception fails the test (with the original traceback)."""
    try:
        return fn(), None
    except allowed as e:
        assert where in str(e), f"message does not name {where!r}: {type(e).__name__}: {e}"
        return None, e
