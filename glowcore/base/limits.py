"""Bounds on what users hand over (temperatures, amounts, fps, sizes, counts, seeds, direction
metadata): a value outside them is refused with one line naming it, before any work starts,
instead of flat grey images, noise, a corrupt video or a traceback."""

from __future__ import annotations

import math
import numbers
from typing import Any, Collection, Optional

MAX_TEMPERATURE = 4.0  # beyond ~2 samples are noise already; 1e30 gave two-colour images
MAX_AMOUNT = 100.0  # edit amounts and slider ranges (1.0 = a clear change)
MIN_FPS, MAX_FPS = 0.1, 240.0  # MP4 time stamps break far beyond (1e9 fps: every dts 0)
MAX_OUTPUT_PIXELS = 64 * 2**20  # one written image: 64 Mpixel (192 MiB of RGB)
MAX_SAMPLES = 4096  # images drawn by one command
MAX_CANDIDATES = 64  # inpainting candidates
MAX_SEED = 2**63 - 1  # torch's seeds are 64-bit
MAX_LEVELS = 16  # a model's levels (scales): an image side of 2**16 pixels at least

__all__ = [
    "MAX_TEMPERATURE", "MAX_AMOUNT", "MAX_LEVELS", "MIN_FPS", "MAX_FPS", "MAX_OUTPUT_PIXELS", "MAX_SAMPLES", "MAX_CANDIDATES",
    "MAX_SEED", "number_in", "check_seed", "check_output_size", "check_direction_info", "check_direction_name",
]


def number_in(what: str, value: Any, lo: float, hi: float) -> float:
    """``value`` as a float if it is a finite number in [lo, hi], else ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        v = float(value)
    except OverflowError:
        raise ValueError(f"{what} must be between {lo:g} and {hi:g}, got {value}") from None
    if not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if not lo <= v <= hi:
        raise ValueError(f"{what} must be between {lo:g} and {hi:g}, got {value:g}")
    return v


def check_seed(seed: Any, what: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{what} must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    return seed


def check_output_size(path: Any, width: int, height: int) -> None:
    """Refuse an image of more than MAX_OUTPUT_PIXELS before it is made."""
    if width * height > MAX_OUTPUT_PIXELS:
        raise ValueError(f"{path}: a {width}x{height} image is too big (at most {MAX_OUTPUT_PIXELS >> 20} Mpixel); use a smaller --scale or fewer images")


def check_direction_name(name: Any) -> str:
    """A direction name: a non-empty string, no surrounding spaces, no '=', control characters or
    path separators, not '.' or '..'."""
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"a direction name must be a non-empty string without surrounding spaces, got {name!r}")
    if "=" in name or any(ord(ch) < 32 for ch in name):
        raise ValueError(f"a direction name may not contain '=' or control characters: {name!r}")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"a direction name may not contain '/' or '\\' or be '.' or '..': {name!r}")
    return name


def check_direction_info(name: str, info: Any, known: Optional[Collection[str]] = None) -> dict:
    """A direction's metadata as stored in config.json: the numbers the edits and the sliders use
    must be usable (ValueError naming the direction and the key). ``fixed`` (the directions an
    edit of this one holds fixed by default, ``glowcore.ops.directions``) must be a list of
    distinct direction names other than its own; with ``known`` (the names of the directions the
    model has), each must be one of them."""
    if not isinstance(info, dict):
        raise ValueError(f"direction {name!r}: its entry must be a JSON object, got {type(info).__name__}")
    if "fixed" in info:
        held = info["fixed"]
        if not isinstance(held, (list, tuple)) or not all(isinstance(f, str) for f in held):
            raise ValueError(f"direction {name!r}: 'fixed' must be a list of direction names, got {held!r}")
        for f in held:
            try:
                check_direction_name(f)
            except ValueError as e:
                raise ValueError(f"direction {name!r}: 'fixed': {e}") from None
        if name in held:
            raise ValueError(f"direction {name!r}: 'fixed' names the direction itself (an edit cannot hold what it changes)")
        if len(set(held)) != len(held):
            raise ValueError(f"direction {name!r}: 'fixed' names a direction twice: {list(held)!r}")
        if known is not None:
            unknown = [f for f in held if f not in known]
            if unknown:
                raise ValueError(f"direction {name!r}: 'fixed' names {'an unknown direction' if len(unknown) == 1 else 'unknown directions'} "
                                 f"{', '.join(repr(f) for f in unknown)} (the model has {len(known)} directions)")
    if "scale" in info:
        scale = number_in(f"direction {name!r}: 'scale'", info["scale"], -1e6, 1e6)
        if scale == 0:
            raise ValueError(f"direction {name!r}: 'scale' must not be 0")
    if "center" in info:
        number_in(f"direction {name!r}: 'center'", info["center"], -1e6, 1e6)
    if "scale_neg" in info:  # the scale of negative amounts (glowcore.ops.directions)
        if number_in(f"direction {name!r}: 'scale_neg'", info["scale_neg"], 0, 1e6) <= 0:
            raise ValueError(f"direction {name!r}: 'scale_neg' must be above 0")
    for key in ("range", "limit"):
        if key in info:
            if number_in(f"direction {name!r}: {key!r}", info[key], 0, MAX_AMOUNT) <= 0:
                raise ValueError(f"direction {name!r}: {key!r} must be above 0")
    if "slider_range" in info:
        r = info["slider_range"]
        if not isinstance(r, (list, tuple)) or len(r) != 2:
            raise ValueError(f"direction {name!r}: 'slider_range' must be [low, high], got {r!r}")
        lo, hi = (number_in(f"direction {name!r}: 'slider_range'", v, -MAX_AMOUNT, MAX_AMOUNT) for v in r)
        if not lo < hi:
            raise ValueError(f"direction {name!r}: 'slider_range' must be [low, high] with low < high, got {r!r}")
    if "bounds" in info:  # coordinates an edit moves a face to at most (glowcore.ops.editing.bounded_amounts)
        b = info["bounds"]
        if not isinstance(b, (list, tuple)) or len(b) != 2:
            raise ValueError(f"direction {name!r}: 'bounds' must be [low, high] (null for no bound), got {b!r}")
        lo, hi = (None if v is None else number_in(f"direction {name!r}: 'bounds'", v, -MAX_AMOUNT, MAX_AMOUNT) for v in b)
        if (lo is not None and not lo < 0) or (hi is not None and not hi > 0):
            raise ValueError(f"direction {name!r}: 'bounds' must be [low < 0, high > 0] (null for no bound), got {b!r}")
    return info
