"""The data set type (:class:`ImageDataset`, :class:`DataError`) and where its images come from: decoding one image file, and the sources that list a data
set's files, labels and splits (CelebA's layout, a folder with an optional labels CSV, Fashion-MNIST's
idx files). :mod:`glowcore.data.datasets` decodes a source into its cache and serves it."""

from __future__ import annotations

import csv
import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..io import imagefiles
from ..io.imagefiles import image_files, to_rgb

CELEBA_CROP_BOX = (15, 35, 163, 183)
CELEBA_FULL_SIZE = (178, 218)
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


# ---------------------------------------------------------------------------- image decoding
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
    if w * h > imagefiles.MAX_PIXELS:
        raise ValueError(f"refused, {w}x{h} is more than the {imagefiles.MAX_PIXELS / 1e6:.0f}-megapixel limit (possible decompression bomb)")


def _decode_folder_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        _check_pixels(img)
        if img.format == "JPEG":
            img.draft("RGB", (size, size))  # decode at a reduced scale that is still >= size
        img = ImageOps.exif_transpose(img)
        img = to_rgb(img)
        img = _square_resize(img, size)
        return np.asarray(img, dtype=np.uint8)


def _decode_celeba_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        _check_pixels(img)
        img = to_rgb(img)
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
    extra = sorted(n for n in on_disk if n.lower().endswith(imagefiles.IMAGE_SUFFIXES) and n not in listed)
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
    names = image_files(root)
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
