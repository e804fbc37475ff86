"""Image data sets for training and for fitting attribute directions.

Three kinds of source, named on the command line by a spec string:

* ``celeba:PATH`` -- CelebA's layout: ``PATH/img_align_celeba/*.jpg``, ``list_attr_celeba.txt``
  (the 40 attributes, -1/1) and, when present, ``list_eval_partition.txt`` (0 train, 1 validation,
  2 test). Full-size 178x218 originals get the standard face crop (box 15,35,163,183) and a
  bicubic resize; images already at the model size are used as they are.
* ``folder:PATH`` -- any folder of images Pillow reads (recursive; JPEG, PNG, WebP; EXIF
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
import csv
import gzip
import hashlib
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

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
CELEBA_CROP_BOX = (15, 35, 163, 183)
CELEBA_FULL_SIZE = (178, 218)
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot",
]
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
KINDS = ("celeba", "folder", "fashion-mnist", "pack")
CACHE_VERSION = 1
MAX_PIXELS = 2 * 89_478_485  # larger images are refused before decoding (Pillow's bomb limit)
VAL_FRACTION = 0.05


class DataError(ValueError):
    """Bad training data: the message names the file or folder and the problem."""


class DataWarning(UserWarning):
    """A recoverable data problem (an unreadable image that was skipped)."""


@dataclass
class ImageDataset:
    """One split of a data set, decoded.

    ``images`` is ``(N, H, W, C)`` uint8 (memory-mapped from the cache for image files),
    ``labels`` is ``(N, K)`` uint8 in {0, 1} (or ``None`` when the source has no labels) with
    ``label_names[k]`` naming column k, ``names[i]`` is image i's file name (relative to the
    source) and ``skipped`` lists the unreadable images that were left out.
    """

    images: np.ndarray
    labels: Optional[np.ndarray]
    label_names: list[str]
    names: list[str]
    spec: str
    split: str
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])

    def label(self, name: str) -> np.ndarray:
        """The 0/1 column of one attribute, by name."""
        if self.labels is None or name not in self.label_names:
            raise KeyError(f"{self.spec} has no label {name!r}; it has: {', '.join(self.label_names) or 'none'}")
        return self.labels[:, self.label_names.index(name)]

    def check_fits(self, image_size: int, channels: int, what: str = "") -> None:
        """Raise :class:`DataError` unless the images are ``image_size`` square with ``channels``
        channels (what a model takes); ``what`` names them in the message ("training", ...)."""
        if self.image_size != image_size or self.channels != channels:
            s = self.image_size
            raise DataError(
                f"{self.spec}: the {what + ' ' if what else ''}images are {s}x{s}x{self.channels} but the model takes "
                f"{image_size}x{image_size}x{channels}"
            )

    def describe(self) -> str:
        extra = f", {len(self.label_names)} labels" if self.labels is not None else ""
        skipped = f", {len(self.skipped)} unreadable skipped" if self.skipped else ""
        return f"{self.spec} [{self.split}]: {len(self)} images {self.image_size}x{self.image_size}x{self.channels}{extra}{skipped}"


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


# ---------------------------------------------------------------------------- image decoding
def _to_rgb(img):
    """Any Pillow image -> RGB (transparency composited on white, grayscale replicated, 16/32-bit
    scaled to 8 bits rather than clipped)."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or (arr.size and arr.max() > 255) else 255.0
        img = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


def _square_resize(img, size: int):
    from PIL import Image

    w, h = img.size
    if (w, h) != (size, size):
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        if (w, h) != (s, s):
            img = img.crop((left, top, left + s, top + s))
        if s != size:
            img = img.resize((size, size), Image.BICUBIC)
    return img


def _check_pixels(img) -> None:
    """Refuse giant images before decoding them (Pillow's own limit can be switched off globally)."""
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ValueError(f"refused, {w}x{h} is more than the {MAX_PIXELS / 1e6:.0f}-megapixel limit (possible decompression bomb)")


def _decode_folder_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        _check_pixels(img)
        if img.format == "JPEG":
            img.draft("RGB", (size, size))  # decode at a reduced scale that is still >= size
        img = ImageOps.exif_transpose(img)
        img = _to_rgb(img)
        img = _square_resize(img, size)
        return np.asarray(img, dtype=np.uint8)


def _decode_celeba_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        _check_pixels(img)
        img = _to_rgb(img)
        if img.size == CELEBA_FULL_SIZE:
            img = img.crop(CELEBA_CROP_BOX)
            if img.size != (size, size):
                img = img.resize((size, size), Image.BICUBIC)
        else:
            img = _square_resize(img, size)
        return np.asarray(img, dtype=np.uint8)


def _natural_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size
    except Exception:
        return (0, 0)


# ---------------------------------------------------------------------------- sources
@dataclass
class _Source:
    kind: str
    root: Path
    files: list[Path]  # absolute, in data set order (already restricted to the split)
    names: list[str]
    labels: Optional[np.ndarray]
    label_names: list[str]
    list_files: list[Path]  # metadata files whose change must rebuild the cache
    decode: Callable[[Path, int], np.ndarray]
    transform: str


def _read_text(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None


def _examples(items: Sequence[str], n: int = 3) -> str:
    items = list(items)
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _list_images(folder: Path) -> list[str]:
    """Image files under ``folder`` (recursive, sorted, relative POSIX paths; hidden ones skipped;
    links followed once per real folder and file: :mod:`glowcore.io.walk`)."""
    from ..io.walk import list_files

    return list_files(folder, lambda f: f.lower().endswith(IMAGE_EXTENSIONS))


def _held_out(n: int, fraction: float = VAL_FRACTION) -> np.ndarray:
    """Boolean mask of a deterministic held-out validation subset of ``n`` items."""
    mask = np.zeros(n, dtype=bool)
    if n >= 2:
        n_val = min(n - 1, max(1, int(round(n * fraction))))
        mask[np.random.default_rng(20240611).permutation(n)[:n_val]] = True
    return mask


def _split_select(split: str, codes: np.ndarray, where: str) -> np.ndarray:
    """Indices of ``split`` given per-item codes (0 train, 1 val, 2 test)."""
    if split == "all":
        return np.arange(len(codes))
    code = {"train": 0, "val": 1, "test": 2}[split]
    idx = np.flatnonzero(codes == code)
    if len(idx) == 0:
        raise DataError(f"{where}: the {split!r} split is empty")
    return idx


def _celeba_source(root: Path, split: str) -> _Source:
    if not root.exists():
        raise DataError(f"CelebA folder {root} does not exist")
    img_dir = root / "img_align_celeba"
    if not img_dir.is_dir():
        raise DataError(f"{root} is not a CelebA folder: it has no img_align_celeba/ subfolder (use folder:{root} for a plain image folder)")
    attr_path = root / "list_attr_celeba.txt"
    if not attr_path.is_file():
        raise DataError(f"{attr_path} is missing (CelebA's attribute list; use folder:{root} for images without attributes)")
    lines = [ln for ln in _read_text(attr_path) if ln.strip()]
    if len(lines) < 2:
        raise DataError(f"{attr_path}: too short to be a CelebA attribute list (needs a count line, a names line and rows)")
    try:
        declared = int(lines[0].split()[0])
    except ValueError:
        raise DataError(f"{attr_path}: line 1 should be the number of rows, got {lines[0][:40]!r}") from None
    label_names = lines[1].split()
    rows = lines[2:]
    if declared != len(rows):
        raise DataError(f"{attr_path}: line 1 says {declared} rows but the file has {len(rows)}")
    names: list[str] = []
    labels = np.zeros((len(rows), len(label_names)), dtype=np.uint8)
    for i, row in enumerate(rows):
        parts = row.split()
        if len(parts) != len(label_names) + 1:
            raise DataError(f"{attr_path}: line {i + 3} has {len(parts) - 1} values, expected {len(label_names)} (one per attribute)")
        try:
            values = [int(v) for v in parts[1:]]
        except ValueError:
            raise DataError(f"{attr_path}: line {i + 3} has a value that is not -1, 0 or 1") from None
        names.append(parts[0])
        labels[i] = [1 if v > 0 else 0 for v in values]
    on_disk = set(os.listdir(img_dir))
    if not on_disk:
        raise DataError(f"{img_dir} is empty")
    missing = [n for n in names if n not in on_disk]
    if missing:
        raise DataError(f"{attr_path} lists {len(missing)} image(s) that are not in {img_dir} (e.g. {_examples(missing)}); the attribute rows do not match the images")
    listed = set(names)
    extra = sorted(n for n in on_disk if n.lower().endswith(IMAGE_EXTENSIONS) and n not in listed)
    if extra:
        raise DataError(f"{img_dir} has {len(extra)} image(s) that {attr_path.name} does not list (e.g. {_examples(extra)}); the attribute rows do not match the images")
    list_files = [attr_path]
    part_path = root / "list_eval_partition.txt"
    if part_path.is_file():
        list_files.append(part_path)
        part: dict[str, int] = {}
        for i, ln in enumerate(_read_text(part_path)):
            p = ln.split()
            if not p:
                continue
            if len(p) != 2 or p[1] not in ("0", "1", "2"):
                raise DataError(f"{part_path}: line {i + 1} should be 'NAME 0|1|2', got {ln[:60]!r}")
            part[p[0]] = int(p[1])
        unlisted = [n for n in names if n not in part]
        if unlisted:
            raise DataError(f"{part_path} has no partition for {len(unlisted)} image(s) of {attr_path.name} (e.g. {_examples(unlisted)})")
        codes = np.array([part[n] for n in names], dtype=np.int64)
    else:
        codes = _held_out(len(names)).astype(np.int64)
    idx = _split_select(split, codes, str(root))
    return _Source(
        kind="celeba", root=root, files=[img_dir / names[i] for i in idx], names=[names[i] for i in idx],
        labels=labels[idx], label_names=label_names, list_files=list_files, decode=_decode_celeba_image,
        transform=f"celeba-crop{','.join(map(str, CELEBA_CROP_BOX))}-bicubic",
    )


def _read_labels_csv(path: Path, images: list[str]) -> tuple[np.ndarray, list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: is not UTF-8 text (save it as a UTF-8 CSV file)") from None
    except csv.Error as e:  # NUL bytes, fields over the csv module's size limit
        raise DataError(f"{path}: is not a readable CSV file ({e})") from None
    if len(rows) < 2:
        raise DataError(f"{path}: needs a header 'filename,attr1,...' and one row per image")
    names = [c.strip() for c in rows[0][1:]]
    if not names:
        raise DataError(f"{path}: the header names no attributes (expected 'filename,attr1,attr2,...')")
    table: dict[str, list[int]] = {}
    for i, r in enumerate(rows[1:]):
        if len(r) != len(names) + 1:
            raise DataError(f"{path}: line {i + 2} has {len(r) - 1} values, expected {len(names)}")
        try:
            table[r[0].strip().replace("\\", "/")] = [1 if float(v) > 0 else 0 for v in r[1:]]
        except ValueError:
            raise DataError(f"{path}: line {i + 2} has a value that is not a number") from None
    missing = [n for n in images if n not in table]
    if missing:
        raise DataError(f"{path} has no row for {len(missing)} image(s) (e.g. {_examples(missing)}); the label rows do not match the images")
    extra = sorted(set(table) - set(images))
    if extra:
        raise DataError(f"{path} has {len(extra)} row(s) for images that are not in the folder (e.g. {_examples(extra)}); the label rows do not match the images")
    return np.array([table[n] for n in images], dtype=np.uint8).reshape(len(images), len(names)), names


def _folder_source(root: Path, split: str, labels_csv: Optional[Path]) -> _Source:
    if not root.exists():
        raise DataError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    names = _list_images(root)
    if not names:
        raise DataError(f"{root} contains no images (JPEG, PNG or WebP files, searched recursively)")
    if labels_csv is None and (root / "labels.csv").is_file():
        labels_csv = root / "labels.csv"
    labels, label_names, list_files = None, [], []
    if labels_csv is not None:
        labels, label_names = _read_labels_csv(Path(labels_csv), names)
        list_files.append(Path(labels_csv))
    codes = _held_out(len(names)).astype(np.int64)
    idx = _split_select("all" if split == "all" else ("val" if split in ("val", "test") else "train"), codes, str(root))
    return _Source(
        kind="folder", root=root, files=[root / names[i] for i in idx], names=[names[i] for i in idx],
        labels=None if labels is None else labels[idx], label_names=label_names, list_files=list_files,
        decode=_decode_folder_image, transform="exif-rgb-centrecrop-bicubic",
    )


# ------------------------------------------------------------------------------ Fashion-MNIST
MAX_IDX_BYTES = 256 * 1024 * 1024  # Fashion-MNIST's largest file is 47 MB; refuse gzip bombs


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:  # type: ignore[operator]
            data = fh.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot be read as an idx file ({e})") from None
    if len(data) > MAX_IDX_BYTES:
        raise DataError(f"{path}: more than {MAX_IDX_BYTES >> 20} MB (uncompressed); not a Fashion-MNIST idx file")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an idx file of unsigned bytes")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path}: its header is cut short (truncated?)")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(dims):
        raise DataError(f"{path}: has {body.size} values but its header says {dims} (truncated?)")
    try:
        return body.reshape(dims)
    except ValueError as e:  # e.g. an empty array with absurd dimensions
        raise DataError(f"{path}: its dimensions {dims} are not usable ({e})") from None


def _find_idx(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise DataError(f"Fashion-MNIST file {root / (stem + '.gz')} is missing (install Debian's dataset-fashion-mnist, or give fashion-mnist:PATH)")


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
        first = next((f for f in sorted(os.listdir(folder)) if f.lower().endswith(IMAGE_EXTENSIONS)), None)
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
