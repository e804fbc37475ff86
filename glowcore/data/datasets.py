"""Image data sets for training and for fitting attribute directions.

Three kinds of source, named on the command line by a spec string:

* ``celeba:PATH`` -- CelebA's layout: ``PATH/img_align_celeba/*.jpg``, ``list_attr_celeba.txt``
  (the 40 attributes, -1/1) and, when present, ``list_eval_partition.txt`` (0 train, 1 validation,
  2 test). Full-size 178x218 originals get the standard face crop (box 15,35,163,183) and a
  bicubic resize; images already at the model size are used as they are.
* ``folder:PATH`` -- any folder of images Pillow reads (recursive; JPEG, PNG, WebP, BMP, GIF, TIFF: :mod:`glowcore.io.imagefiles`; EXIF
  orientation applied; grayscale and RGBA converted to RGB), centre-cropped to a square and
  resized. Optional labels from ``PATH/labels.csv`` (or ``labels_csv=``): ``filename,attr1,...``.
  A held-out fraction (5%) is the validation split.
* ``pack:PATH`` -- a compact data pack (:mod:`glowcore.data.packs`): train and validation images
  quantised to a bit depth and stored losslessly in one safetensors file.
* ``fashion-mnist[:PATH]`` -- Fashion-MNIST idx ``.gz`` files (default folder
  ``/usr/share/datasets/fashion-mnist``), padded to 32x32, one channel, the 10 classes as one-hot
  labels. The test set is the validation split.

JPEGs are decoded once into a memory-mapped uint8 cache (``.npy``, never pickled) in a cache folder
(``~/.cache/glow-explorer/data`` by default, or ``$GLOW_EXPLORER_CACHE``), keyed by the source
and the transform; a cache is rebuilt when the source's files change (names, sizes, mtimes).

The public entry point is :func:`load_dataset`::

    ds = load_dataset("celeba:../shared/data/celeba64", 64, split="train")
    ds.images       # (N, 64, 64, 3) uint8, memory-mapped
    ds.labels       # (N, 40) uint8 0/1
    ds.label_names  # ['5_o_Clock_Shadow', 'Arched_Eyebrows', ...]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np

from ..io import imagefiles
from .sources import (  # noqa: F401  (DataError, DataWarning, ImageDataset: part of this module's interface)
    ImageDataset,
    CELEBA_CROP_BOX,
    DataError,
    DataWarning,
    _Source,
    _celeba_source,
    _examples,
    _find_idx,
    _folder_source,
    _natural_size,
    _read_idx,
)
from ..base.progress import CancelToken, ProgressFn, check_cancel, report

__all__ = [
    "DataError",
    "DataWarning",
    "ImageDataset",
    "SPLITS",
    "CELEBA_CROP_BOX",
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "parse_spec",
    "load_dataset",
    "default_cache_dir",
    "default_image_size",
    "dataset_channels",
]

SPLITS = ("train", "val", "test", "all")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot",
]
KINDS = ("celeba", "folder", "fashion-mnist", "pack")
CACHE_VERSION = 1


# ------------------------------------------------------------------------------------ specs
def parse_spec(spec: str) -> tuple[str, Path]:
    """``"celeba:PATH"`` -> ``("celeba", Path)``; a bare folder is guessed from its layout."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError("empty data spec; use celeba:PATH, folder:PATH, pack:PATH or fashion-mnist[:PATH]")
    spec = spec.strip()
    kind, sep, rest = spec.partition(":")
    if kind == "fashion-mnist":
        return kind, Path(rest or FASHION_MNIST_DIR).expanduser()
    if sep and kind in KINDS:
        if not rest:
            raise DataError(f"data spec {spec!r} has no path after '{kind}:'")
        return kind, Path(rest).expanduser()
    if sep and len(kind) > 1 and "/" not in kind and "\\" not in kind:
        raise DataError(f"unknown data kind {kind!r} in {spec!r}; use celeba:PATH, folder:PATH, pack:PATH or fashion-mnist[:PATH]")
    path = Path(spec).expanduser()
    if (path / "img_align_celeba").is_dir():
        return "celeba", path
    return "folder", path


def default_cache_dir() -> Path:
    env = os.environ.get("GLOW_EXPLORER_CACHE")
    if env:
        return Path(env).expanduser() / "data"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "glow-explorer" / "data"


def _fashion_mnist(root: Path, split: str, image_size: Optional[int], spec: str) -> ImageDataset:
    if image_size not in (None, 32):
        raise DataError(f"Fashion-MNIST images are 28x28, padded to 32x32: use image size 32, not {image_size}")
    if not root.is_dir():
        raise DataError(f"Fashion-MNIST folder {root} does not exist (install Debian's dataset-fashion-mnist, or give fashion-mnist:PATH)")
    parts = {"train": ["train"], "val": ["t10k"], "test": ["t10k"], "all": ["train", "t10k"]}[split]
    images, classes = [], []
    for p in parts:
        x = _read_idx(_find_idx(root, f"{p}-images-idx3-ubyte"))
        y = _read_idx(_find_idx(root, f"{p}-labels-idx1-ubyte"))
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{root}: {p} images {x.shape} and labels {y.shape} do not match")
        if y.size and int(y.max()) >= len(FASHION_MNIST_CLASSES):
            raise DataError(f"{root}: {p} labels go up to {int(y.max())}, expected classes 0-9")
        images.append(np.pad(x, ((0, 0), (2, 2), (2, 2)))[..., None])
        classes.append(y.astype(np.int64))
    img = np.concatenate(images)
    cls = np.concatenate(classes)
    labels = np.zeros((len(cls), len(FASHION_MNIST_CLASSES)), dtype=np.uint8)
    labels[np.arange(len(cls)), cls] = 1
    names = [f"{p}[{i}]" for p, x in zip(parts, images) for i in range(len(x))]
    return ImageDataset(img, labels, list(FASHION_MNIST_CLASSES), names, spec, split)


# ----------------------------------------------------------------------------------- cache
def _fingerprint(source: _Source) -> str:
    h = hashlib.sha256()
    for path, name in zip(source.files, source.names):
        try:
            st = path.stat()
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{name}\0missing\n".encode())
    for path in source.list_files:
        data = path.read_bytes()
        h.update(path.name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _cache_dir_for(source: _Source, size: int, split: str, cache_dir: Path) -> Path:
    ident = json.dumps(
        {"v": CACHE_VERSION, "kind": source.kind, "root": str(source.root.resolve()), "transform": source.transform,
         "size": size, "split": split, "lists": [str(p.resolve()) for p in source.list_files]},
        sort_keys=True,
    )
    key = hashlib.sha256(ident.encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source.root.resolve().name)[:40]
    return cache_dir / f"{source.kind}-{safe}-{size}px-{split}-{key}"


def _read_cache(folder: Path, fingerprint: str, size: int) -> Optional[tuple[np.ndarray, dict]]:
    meta_path = folder / "meta.json"
    arr_path = folder / "images.npy"
    if not (meta_path.is_file() and arr_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("version") != CACHE_VERSION or meta.get("fingerprint") != fingerprint:
            return None
        arr = np.load(arr_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1:] != (size, size, 3) or arr.shape[0] != len(meta.get("names", ())):
        return None
    return arr, meta


def _build_cache(source: _Source, size: int, folder: Path, fingerprint: str, progress: Optional[ProgressFn],
                 cancel: Optional[CancelToken], workers: int) -> None:
    from numpy.lib.format import open_memmap

    folder.mkdir(parents=True, exist_ok=True)
    n = len(source.files)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".build-", dir=folder))
    try:
        arr = open_memmap(tmp_dir / "images.npy", mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
        keep = np.ones(n, dtype=bool)
        skipped: list[str] = []

        def decode(i: int):
            try:
                out = source.decode(source.files[i], size)
                if out.shape != (size, size, 3):
                    return i, f"decoded to shape {out.shape}"
                return i, out
            except Exception as e:  # any unreadable or corrupt file is skipped, never fatal
                return i, f"{type(e).__name__}: {e}"

        report(progress, 0, n, "decoding images")
        chunk = 256
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for start in range(0, n, chunk):
                check_cancel(cancel)
                for i, out in pool.map(decode, range(start, min(n, start + chunk))):
                    if isinstance(out, str):
                        keep[i] = False
                        skipped.append(source.names[i])
                        warnings.warn(f"skipping unreadable image {source.files[i]}: {out}", DataWarning, stacklevel=2)
                    else:
                        arr[i] = out
                report(progress, min(n, start + chunk), n, "decoding images")
        arr.flush()
        if not keep.any():
            raise DataError(f"{source.root}: none of the {n} images could be read")
        if skipped:
            kept = open_memmap(tmp_dir / "kept.npy", mode="w+", dtype=np.uint8, shape=(int(keep.sum()), size, size, 3))
            kept[:] = arr[keep]
            kept.flush()
            del kept
            del arr
            os.replace(tmp_dir / "kept.npy", tmp_dir / "images.npy")
        else:
            del arr
        names = [nm for nm, k in zip(source.names, keep) if k]
        meta = {"version": CACHE_VERSION, "fingerprint": fingerprint, "source": str(source.root), "kind": source.kind,
                "transform": source.transform, "size": size, "names": names, "skipped": skipped}
        (tmp_dir / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        with contextlib.suppress(OSError):
            (folder / "meta.json").unlink()  # invalidate first: meta.json is written last
        os.replace(tmp_dir / "images.npy", folder / "images.npy")
        os.replace(tmp_dir / "meta.json", folder / "meta.json")
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def default_image_size(spec: str) -> int:
    """The image size a data set trains at when none is given: its own size if square, else 64."""
    kind, root = parse_spec(spec)
    if kind == "fashion-mnist":
        return 32
    if kind == "pack":
        from .packs import pack_info

        return pack_info(root)["image_size"]
    folder = root / "img_align_celeba" if kind == "celeba" else root
    if folder.is_dir():
        first = next((f for f in sorted(os.listdir(folder)) if f.lower().endswith(imagefiles.IMAGE_SUFFIXES)), None)
        if first is not None:
            w, h = _natural_size(folder / first)
            if w == h and w in (16, 32, 64, 128, 256):
                return w
    return 64


def dataset_channels(spec: str) -> int:
    """Channels of a data set's images (1 for Fashion-MNIST, else 3), without loading it."""
    kind, root = parse_spec(spec)
    if kind == "pack":
        from .packs import pack_info

        return pack_info(root)["channels"]
    return 1 if kind == "fashion-mnist" else 3


def load_dataset(
    spec: str,
    image_size: Optional[int] = None,
    split: str = "train",
    *,
    cache_dir: str | os.PathLike | None = None,
    labels_csv: str | os.PathLike | None = None,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[CancelToken] = None,
    workers: Optional[int] = None,
) -> ImageDataset:
    """Load one split (``"train"``, ``"val"``, ``"test"`` or ``"all"``) of a data set.

    ``image_size`` defaults to :func:`default_image_size`. Image files are decoded once into a
    cache under ``cache_dir`` (default :func:`default_cache_dir`); ``progress(done, total,
    message)`` reports while it is built. Unreadable images are skipped with a
    :class:`DataWarning` and listed in ``.skipped``. Bad input raises :class:`DataError`.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    kind, root = parse_spec(spec)
    if image_size is not None and (not isinstance(image_size, int) or image_size < 2):
        raise DataError(f"image size must be an integer >= 2, got {image_size!r}")
    if kind == "fashion-mnist":
        return _fashion_mnist(root, split, image_size, spec)
    if kind == "pack":  # a compact data pack (glowcore.data.packs), decoded in memory
        from .packs import load_pack_split

        return load_pack_split(root, split, image_size, spec)
    size = image_size if image_size is not None else default_image_size(spec)
    if kind == "celeba":
        source = _celeba_source(root, split)
    else:
        source = _folder_source(root, split, Path(labels_csv) if labels_csv is not None else None)
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folder = _cache_dir_for(source, size, split, cache_root)
    fingerprint = _fingerprint(source)
    cached = _read_cache(folder, fingerprint, size)
    if cached is None:
        try:
            _build_cache(source, size, folder, fingerprint, progress, cancel, workers or min(4, os.cpu_count() or 1))
        except OSError as e:
            raise DataError(f"cannot write the image cache in {folder} ({e.strerror or e}); choose another with --cache-dir") from None
        cached = _read_cache(folder, fingerprint, size)
        if cached is None:  # pragma: no cover - the folder changed under us
            raise DataError(f"the image cache in {folder} could not be read back")
    arr, meta = cached
    kept = meta["names"]
    skipped = list(meta.get("skipped", []))
    labels = source.labels
    if labels is not None and skipped:
        pos = {nm: i for i, nm in enumerate(source.names)}
        labels = labels[[pos[nm] for nm in kept]]
    if skipped:
        print(f"note: {len(skipped)} unreadable image(s) in {root} were skipped (e.g. {_examples(skipped)})", file=sys.stderr)
    return ImageDataset(arr, labels, list(source.label_names), list(kept), spec, split, skipped)
