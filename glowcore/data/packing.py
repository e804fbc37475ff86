"""Packing a data set into a compact data pack (:mod:`glowcore.data.packs`), within a size budget."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..base.progress import CancelToken, ProgressFn, check_cancel, report
from .datasets import load_dataset
from .packs import _CHUNK, PACK_SPLITS, PackSummary, _split_tensors, _write, encode_images
from .sources import DataError

__all__ = ["build_pack"]


def build_pack(
    spec: str,
    out: str | os.PathLike,
    *,
    max_mb: float = 60.0,
    val_images: int = 1000,
    n_bits: int = 5,
    image_size: Optional[int] = None,
    seed: int = 0,
    workers: int = 2,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[CancelToken] = None,
) -> PackSummary:
    """Write a pack of the data set ``spec`` to ``out`` (atomically), at most ``max_mb`` MB.

    ``val_images`` validation images (a seeded random choice) go in first, then as many training
    images as fit, in a seeded random order (all of them when they fit)."""
    if not (isinstance(max_mb, (int, float)) and math.isfinite(max_mb) and max_mb > 0):
        raise ValueError(f"max_mb must be a positive number, got {max_mb!r}")
    if not (isinstance(n_bits, int) and 1 <= n_bits <= 8):
        raise ValueError(f"n_bits must be an integer in 1..8, got {n_bits!r}")
    out = Path(out)
    budget = int(max_mb * 1e6) - 65536  # headroom for the header and metadata
    tensors: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    available: dict[str, int] = {}
    used = 0
    for split in ("val", "train"):
        ds = load_dataset(spec, image_size, split)
        size, channels, label_names = ds.image_size, ds.channels, ds.label_names
        order = np.random.default_rng([seed, PACK_SPLITS.index(split)]).permutation(len(ds))
        if split == "val":
            order = order[: min(val_images, len(ds))]
        available[split] = len(ds)
        blobs: list[bytes] = []
        chosen: list[int] = []
        per_image = 8 + (len(ds.label_names) if ds.labels is not None else 0)  # offset and labels
        full = False
        for lo in range(0, len(order), _CHUNK):
            if full:
                break
            check_cancel(cancel)
            idx = np.sort(order[lo : lo + _CHUNK])
            for i, b in zip(idx, encode_images(ds.images[idx], n_bits, workers)):
                full = used + len(b) + per_image > budget
                if full:
                    break
                blobs.append(b)
                chosen.append(int(i))
                used += len(b) + per_image
            report(progress, len(chosen), len(order), f"{split}: {len(chosen)} images, {used / 1e6:.1f} MB")
        if not blobs:
            raise DataError(f"{spec}: not one {split} image fits in {max_mb} MB")
        tensors.update(_split_tensors(split, blobs, None if ds.labels is None else ds.labels[np.asarray(chosen)]))
        counts[split] = len(blobs)
    return _write(out, tensors, size, channels, n_bits, label_names, str(spec), counts, available, seed)
