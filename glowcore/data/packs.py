"""Compact data packs: a training set in one small file, to carry to a machine that has a GPU.

A pack is one safetensors file (never pickled) holding, for each split, the images encoded one by
one as lossless WebP (PNG for one channel) after quantising them to the model's bit depth, so
nothing a ``n_bits`` model sees is lost: a 5-bit 64x64 CelebA face takes about 3 KB instead of
12 KB raw. Tensors ``{split}.data`` (uint8, the encoded images end to end), ``{split}.offsets``
(int64, N + 1) and optional ``{split}.labels`` (uint8 0/1, N x K); the file's metadata records
the format, image size, channels, bit depth, label names and the source.

Build one with :func:`glowcore.data.packing.build_pack` (or ``python scripts/make_datapack.py``), read it as the data
spec ``pack:PATH`` anywhere a data set is taken (``glow train --data pack:faces.pack``).
"""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..io.fileio import atomic_write_bytes
from .sources import DataError, ImageDataset

__all__ = ["PACK_FORMAT", "PackSummary", "encode_images", "load_pack_split", "pack_arrays", "pack_info"]

PACK_FORMAT = "glow-explorer-datapack"
PACK_VERSION = 1
PACK_SPLITS = ("train", "val")
_CHUNK = 256


@dataclass
class PackSummary:
    path: Path
    bytes: int
    images: dict[str, int]
    available: dict[str, int]
    n_bits: int

    def describe(self) -> str:
        parts = [f"{s} {self.images[s]} of {self.available[s]}" for s in self.images]
        return f"{self.path}: {self.bytes / 1e6:.1f} MB, {', '.join(parts)} images, {self.n_bits}-bit"


def _quantise(images: np.ndarray, n_bits: int) -> np.ndarray:
    shift = 8 - n_bits
    return ((images >> shift) << shift).astype(np.uint8)


def _encode_one(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    if img.shape[2] == 1:
        Image.fromarray(img[:, :, 0]).save(buf, "PNG", optimize=True)
    else:
        Image.fromarray(img).save(buf, "WEBP", lossless=True, quality=50, method=4)
    return buf.getvalue()


def encode_images(images: np.ndarray, n_bits: int, workers: int = 2) -> list[bytes]:
    """Each (H, W, C) uint8 image quantised to ``n_bits`` and encoded losslessly."""
    q = _quantise(np.asarray(images), n_bits)
    with ThreadPoolExecutor(max(1, workers)) as ex:
        return list(ex.map(_encode_one, q))


def _decode_one(blob: bytes, channels: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        arr = np.asarray(im.convert("L" if channels == 1 else "RGB"))
    return arr[:, :, None] if channels == 1 else arr


def _split_tensors(split: str, blobs: list[bytes], labels: Optional[np.ndarray]) -> dict[str, np.ndarray]:
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    out = {f"{split}.data": np.frombuffer(b"".join(blobs), dtype=np.uint8).copy(), f"{split}.offsets": offsets}
    if labels is not None:
        out[f"{split}.labels"] = np.ascontiguousarray(np.asarray(labels).astype(np.uint8))
    return out


def _write(out: Path, tensors: dict[str, np.ndarray], size: int, channels: int, n_bits: int, label_names: list[str],
           source: str, counts: dict[str, int], available: dict[str, int], seed: int) -> PackSummary:
    from safetensors.numpy import save

    meta = {
        "format": PACK_FORMAT, "version": str(PACK_VERSION), "image_size": str(size), "channels": str(channels),
        "n_bits": str(n_bits), "label_names": json.dumps(label_names), "source": source, "seed": str(seed),
        "counts": json.dumps(counts), "available": json.dumps(available),
    }
    data = save(tensors, metadata=meta)
    atomic_write_bytes(out, data)
    return PackSummary(out, len(data), {"train": counts["train"], "val": counts["val"]}, available, n_bits)


def pack_arrays(out: str | os.PathLike, train: np.ndarray, val: np.ndarray, *, n_bits: int = 5,
                train_labels: Optional[np.ndarray] = None, val_labels: Optional[np.ndarray] = None,
                label_names: Optional[list[str]] = None, source: str = "arrays") -> PackSummary:
    """Write a pack of two uint8 ``(N, H, W, C)`` arrays (all of them; no size budget)."""
    train, val = np.asarray(train), np.asarray(val)
    if train.dtype != np.uint8 or train.ndim != 4 or val.shape[1:] != train.shape[1:] or val.dtype != np.uint8:
        raise ValueError("train and val must be uint8 (N, H, W, C) arrays of one image shape")
    if train.shape[1] != train.shape[2] or train.shape[3] not in (1, 3):
        raise ValueError(f"images must be square with 1 or 3 channels, got {train.shape[1:]}")
    have = [x is not None for x in (train_labels, val_labels)]
    if any(have) and not (all(have) and label_names):
        raise ValueError("labels need both splits' label arrays and label_names")
    tensors = {**_split_tensors("train", encode_images(train, n_bits), train_labels),
               **_split_tensors("val", encode_images(val, n_bits), val_labels)}
    counts = {"train": len(train), "val": len(val)}
    return _write(Path(out), tensors, train.shape[1], train.shape[3], n_bits, list(label_names or []), source, counts, counts, 0)


def pack_info(path: str | os.PathLike) -> dict:
    """A pack's metadata (format, image_size, channels, n_bits, label_names, counts), checked."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data pack")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            keys = set(f.keys())
    except Exception as e:
        raise DataError(f"{path}: not a data pack ({e})") from None
    if meta.get("format") != PACK_FORMAT:
        raise DataError(f"{path}: not a glow-explorer data pack (no '{PACK_FORMAT}' format tag)")
    try:
        if int(meta["version"]) > PACK_VERSION:
            raise DataError(f"{path}: a data pack of a newer version ({meta['version']}) than this one reads ({PACK_VERSION})")
        info = {
            "image_size": int(meta["image_size"]), "channels": int(meta["channels"]), "n_bits": int(meta["n_bits"]),
            "label_names": list(json.loads(meta.get("label_names", "[]"))), "source": meta.get("source", ""),
            "counts": dict(json.loads(meta.get("counts", "{}"))), "keys": keys,
        }
    except (KeyError, ValueError, TypeError) as e:
        raise DataError(f"{path}: damaged data pack metadata ({e})") from None
    if info["channels"] not in (1, 3) or not 2 <= info["image_size"] <= 4096:
        raise DataError(f"{path}: damaged data pack metadata (channels {info['channels']}, size {info['image_size']})")
    return info


def load_pack_split(path: str | os.PathLike, split: str, image_size: Optional[int] = None, spec: str = "",
                    workers: Optional[int] = None) -> ImageDataset:
    """One split of a pack as an :class:`ImageDataset` (``"all"``: train and validation)."""
    from safetensors import safe_open

    path = Path(path)
    info = pack_info(path)
    spec = spec or f"pack:{path}"
    if image_size is not None and image_size != info["image_size"]:
        raise DataError(f"{path}: the pack holds {info['image_size']}x{info['image_size']} images, not {image_size}x{image_size}")
    splits = list(PACK_SPLITS) if split == "all" else [split]
    if any(s not in PACK_SPLITS for s in splits):
        raise DataError(f"{path}: a data pack has the splits {', '.join(PACK_SPLITS)}, not {split!r}")
    images, labels, names = [], [], []
    size, ch = info["image_size"], info["channels"]
    with safe_open(str(path), framework="numpy") as f:
        for s in splits:
            if f"{s}.data" not in info["keys"] or f"{s}.offsets" not in info["keys"]:
                raise DataError(f"{path}: the pack has no {s} split")
            data, offsets = f.get_tensor(f"{s}.data"), f.get_tensor(f"{s}.offsets")
            n = len(offsets) - 1
            if n < 0 or offsets[0] != 0 or offsets[-1] != len(data) or (n and np.any(np.diff(offsets) <= 0)):
                raise DataError(f"{path}: damaged data pack ({s} offsets do not index its data)")
            blobs = [data[offsets[i] : offsets[i + 1]].tobytes() for i in range(n)]
            with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as ex:
                try:
                    arrs = list(ex.map(lambda b: _decode_one(b, ch), blobs))
                except Exception as e:
                    raise DataError(f"{path}: damaged data pack (an image of the {s} split cannot be decoded: {e})") from None
            if any(a.shape != (size, size, ch) for a in arrs):
                raise DataError(f"{path}: damaged data pack (an image of the {s} split is not {size}x{size}x{ch})")
            images.append(np.stack(arrs) if arrs else np.zeros((0, size, size, ch), np.uint8))
            names += [f"{s}/{i:06d}" for i in range(n)]
            if f"{s}.labels" in info["keys"]:
                lab = f.get_tensor(f"{s}.labels")
                if lab.shape != (n, len(info["label_names"])):
                    raise DataError(f"{path}: damaged data pack ({s} labels are {lab.shape}, not {n} x {len(info['label_names'])})")
                labels.append(lab)
    have_labels = len(labels) == len(splits) and bool(info["label_names"])
    return ImageDataset(
        np.concatenate(images), np.concatenate(labels) if have_labels else None,
        info["label_names"] if have_labels else [], names, spec, split,
    )
