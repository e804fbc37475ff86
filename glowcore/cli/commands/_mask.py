"""What ``glow inpaint`` checks in a mask file before using it: a mask of another shape than the
photo or the model would be stretched (refused); one of another size is resized (said); many
mid-grey pixels, where 127 keeps and 128 fills, are probably not what the user meant (said)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

GREY = (64, 192)  # gray levels that are neither clearly dark (keep) nor clearly light (fill)


def check_mask(path: Path, photo_size: tuple[int, int], model_size: int) -> None:
    """Raise ValueError for a mask that would be stretched; print one line for unusual ones."""
    from PIL import Image

    if not path.is_file():
        return  # load_mask names the problem
    try:
        with Image.open(path) as im:
            size = im.size
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            grey = None if has_alpha or size[0] * size[1] > 2**26 else np.asarray(im.convert("L"))
    except Exception:  # noqa: BLE001 - load_mask names the problem
        return
    targets = {photo_size, (model_size, model_size)}
    if size not in targets:
        w, h = size
        if all(abs(w / h - tw / th) > 0.01 * tw / th for tw, th in targets):
            raise ValueError(f"{path}: the mask is {w}x{h}, neither the photo's size ({photo_size[0]}x{photo_size[1]}) nor the "
                             f"model's ({model_size}x{model_size}), and another shape: it would be stretched. Paint it over the photo, or at {model_size}x{model_size}")
        print(f"mask: {w}x{h}, resized to fit", file=sys.stderr)
    if grey is not None:
        share = float(((grey >= GREY[0]) & (grey < GREY[1])).mean())
        if share > 0.01:
            print(f"mask: {share:.0%} of its pixels are mid-grey; gray >= 128 is filled, darker is kept", file=sys.stderr)
