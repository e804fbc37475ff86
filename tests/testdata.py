"""Data the tests need, without anything installed beside the clone.

* ``fashion_spec()``: a small Fashion-MNIST look-alike (the four idx ``.gz`` files, written once
  per test process into a temporary folder), so the loader, training and resume tests run on a
  fresh machine without Debian's ``dataset-fashion-mnist``.
* ``SHARED`` and ``needs_shared``: the CelebA data at ``../shared/data`` (CI has it); tests that
  need it are reported as skipped, with the reason, where it is absent.
"""

from __future__ import annotations

import atexit
import gzip
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CELEBA64 = SHARED / "celeba64"
FULL_SAMPLE = SHARED / "celeba_full_sample"


def needs_shared(*parts: str):
    """Skip (with the reason shown) when ``../shared/data/<parts>`` is absent."""
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"needs the shared CelebA data at {path} (absent; CI has it)")


FAKE_TRAIN, FAKE_TEST = 1200, 300
_DIR: Path | None = None


def fake_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 uint8 'garments': a bright blob whose shape depends on the class, on black, with texture."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    out = np.zeros((n, 28, 28), np.uint8)
    for i, c in enumerate(labels):
        h = 6 + (int(c) % 5) * 2 + rng.integers(0, 2)
        w = 5 + (int(c) // 2) * 2 + rng.integers(0, 2)
        cy, cx = 14 + rng.integers(-1, 2), 14 + rng.integers(-1, 2)
        inside = (np.abs(yy - cy) <= h) & (np.abs(xx - cx) <= w)
        shade = 120 + 12 * int(c) + 20 * np.sin(xx / (1.5 + int(c) % 3)) + rng.normal(0, 6, (28, 28))
        img = np.where(inside, shade, 0.0)
        img[cy, cx] = 255.0
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out, labels


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


def write_fashion_mnist(root: Path, n_train: int = FAKE_TRAIN, n_test: int = FAKE_TEST) -> Path:
    """Write the four Fashion-MNIST idx ``.gz`` files (synthetic images) into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        x, y = fake_images(n, seed)
        _write_idx(root / f"{prefix}-images-idx3-ubyte.gz", x)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", y)
    return root


def fashion_mnist_dir() -> Path:
    """The folder of the synthetic Fashion-MNIST files (written on first use, removed at exit)."""
    global _DIR
    if _DIR is None:
        tmp = Path(tempfile.mkdtemp(prefix="glow-test-fmnist-"))
        owner = os.getpid()  # forked children inherit atexit handlers: only this process removes it
        atexit.register(lambda: os.getpid() == owner and shutil.rmtree(tmp, True))
        _DIR = write_fashion_mnist(tmp / "fashion-mnist")
    return _DIR


def fashion_spec() -> str:
    """``fashion-mnist:PATH`` of the synthetic files: the data spec the training tests use."""
    return f"fashion-mnist:{fashion_mnist_dir()}"
