"""Data sets: CelebA layout (64px and full-size originals), image folders, Fashion-MNIST, the cache."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glowcore.data.datasets import (
    CELEBA_CROP_BOX,
    DataError,
    DataWarning,
    FASHION_MNIST_DIR,
    ImageDataset,
    load_dataset,
    parse_spec,
)

from ..testdata import FULL_SAMPLE, fake_images, needs_shared, write_fashion_mnist



def _write_jpeg_with_orientation(path: Path, img: Image.Image, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, format="JPEG", quality=95, exif=exif.tobytes())


def _half_image(w: int, h: int, left, right) -> Image.Image:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = left
    arr[:, w // 2 :] = right
    return Image.fromarray(arr)


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """A folder with JPEG (EXIF-rotated), grayscale PNG, RGBA PNG, WebP, a subfolder and a corrupt file."""
    root = tmp_path / "imgs"
    (root / "sub" / "deeper").mkdir(parents=True)
    # stored 32x16, left red / right blue; orientation 6 = rotate 90 degrees clockwise to display,
    # so the displayed image is 16 wide, 32 high, red on top.
    _write_jpeg_with_orientation(root / "a_rotated.jpg", _half_image(32, 16, (255, 0, 0), (0, 0, 255)), 6)
    Image.fromarray(np.full((20, 20), 77, np.uint8), mode="L").save(root / "b_gray.png")
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:8, :, 3] = 0  # top half fully transparent -> white
    rgba[8:, :, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(root / "sub" / "c_rgba.png")
    Image.fromarray(np.full((24, 24, 3), (10, 200, 30), np.uint8)).save(root / "sub" / "deeper" / "d.webp", format="WEBP", lossless=True)
    (root / "sub" / "e_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"ignored")
    return root


def test_folder_dataset_converts_and_skips_corrupt(mixed_folder: Path, tmp_path: Path) -> None:
    with pytest.warns(DataWarning, match="e_corrupt.jpg"):
        ds = load_dataset(f"folder:{mixed_folder}", 16, split="all", cache_dir=tmp_path / "cache")
    assert ds.names == ["a_rotated.jpg", "b_gray.png", "sub/c_rgba.png", "sub/deeper/d.webp"]
    assert ds.skipped == ["sub/e_corrupt.jpg"]
    assert ds.images.shape == (4, 16, 16, 3) and ds.images.dtype == np.uint8
    assert ds.labels is None
    rot = ds.images[0].astype(int)
    # EXIF orientation applied: red on top, blue at the bottom (centre crop of the 16x32 portrait).
    assert rot[2, 2, 0] > 200 and rot[2, 2, 2] < 60
    assert rot[13, 2, 2] > 200 and rot[13, 2, 0] < 60
    gray = ds.images[1]
    assert np.all(gray == gray[..., :1]) and abs(int(gray[5, 5, 0]) - 77) <= 1
    rgba = ds.images[2].astype(int)
    assert np.all(rgba[2, 5] >= 250)  # transparent -> white
    assert rgba[12, 5, 0] > 250 and rgba[12, 5, 1] < 5  # opaque red stays red
    assert np.abs(ds.images[3].astype(int) - [10, 200, 30]).max() <= 2


def test_cache_is_reused_and_rebuilt_when_source_changes(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(6):
        Image.fromarray(np.full((8, 8, 3), i * 40, np.uint8)).save(root / f"{i}.png")
    calls: list[tuple[int, int]] = []
    cache = tmp_path / "cache"
    ds = load_dataset(f"folder:{root}", 8, split="all", cache_dir=cache, progress=lambda d, t, m: calls.append((d, t)))
    assert calls and calls[-1] == (6, 6)
    assert isinstance(ds.images, np.memmap)
    calls.clear()
    ds2 = load_dataset(f"folder:{root}", 8, split="all", cache_dir=cache, progress=lambda d, t, m: calls.append((d, t)))
    assert calls == []  # read from the cache
    np.testing.assert_array_equal(ds.images, ds2.images)
    # change one file: the cache is rebuilt and sees the new pixels
    Image.fromarray(np.full((8, 8, 3), 255, np.uint8)).save(root / "0.png")
    st = (root / "0.png").stat()
    os.utime(root / "0.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    ds3 = load_dataset(f"folder:{root}", 8, split="all", cache_dir=cache, progress=lambda d, t, m: calls.append((d, t)))
    assert calls and int(ds3.images[0, 0, 0, 0]) == 255
    # another size is another cache entry
    ds4 = load_dataset(f"folder:{root}", 4, split="all", cache_dir=cache)
    assert ds4.images.shape == (6, 4, 4, 3)


def test_folder_splits_are_disjoint_and_deterministic(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(40):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(root / f"{i:02d}.png")
    tr = load_dataset(f"folder:{root}", 8, split="train", cache_dir=tmp_path / "c")
    va = load_dataset(f"folder:{root}", 8, split="val", cache_dir=tmp_path / "c")
    assert len(tr) + len(va) == 40 and len(va) == 2
    assert not set(tr.names) & set(va.names)
    assert load_dataset(f"folder:{root}", 8, split="val", cache_dir=tmp_path / "c2").names == va.names


def test_folder_labels_csv(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    (root / "s").mkdir(parents=True)
    for name in ("x.png", "s/y.png"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / name)
    (root / "labels.csv").write_text("filename,Smiling,Male\nx.png,1,-1\ns/y.png,0,1\n")
    ds = load_dataset(f"folder:{root}", 8, split="all", cache_dir=tmp_path / "c")
    assert ds.label_names == ["Smiling", "Male"]
    np.testing.assert_array_equal(ds.labels, [[0, 1], [1, 0]])  # rows follow ds.names (sorted: s/y.png, x.png)
    assert ds.names == ["s/y.png", "x.png"]
    np.testing.assert_array_equal(ds.label("Smiling"), [0, 1])
    (root / "labels.csv").write_text("filename,Smiling\nx.png,1\n")
    with pytest.raises(DataError, match=r"labels\.csv has no row for 1 image.*s/y\.png"):
        load_dataset(f"folder:{root}", 8, split="all", cache_dir=tmp_path / "c")


def _mini_celeba(root: Path, n: int = 4, listed: int | None = None) -> Path:
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, nm in enumerate(names):
        Image.fromarray(np.full((16, 16, 3), 20 * i, np.uint8)).save(root / "img_align_celeba" / nm, quality=95)
    listed_names = names if listed is None else [f"{i + 1:06d}.jpg" for i in range(listed)]
    rows = [f"{nm} {' '.join('1' if (i + j) % 2 else '-1' for j in range(3))}" for i, nm in enumerate(listed_names)]
    (root / "list_attr_celeba.txt").write_text(f"{len(rows)}\nSmiling Male Young\n" + "\n".join(rows) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(f"{nm} {0 if i < n - 1 else 1}" for i, nm in enumerate(listed_names)) + "\n")
    return root


def test_celeba_layout_labels_and_partition(tmp_path: Path) -> None:
    root = _mini_celeba(tmp_path / "celeba")
    tr = load_dataset(f"celeba:{root}", 16, split="train", cache_dir=tmp_path / "c")
    va = load_dataset(f"celeba:{root}", 16, split="val", cache_dir=tmp_path / "c")
    assert tr.names == ["000001.jpg", "000002.jpg", "000003.jpg"] and va.names == ["000004.jpg"]
    assert tr.label_names == ["Smiling", "Male", "Young"]
    np.testing.assert_array_equal(tr.labels[0], [0, 1, 0])
    np.testing.assert_array_equal(va.labels[0], [1, 0, 1])
    assert parse_spec(str(root)) == ("celeba", root)  # a bare CelebA folder is recognised


@needs_shared("celeba_full_sample")
def test_celeba_full_size_originals_get_the_face_crop(tmp_path: Path) -> None:
    ds = load_dataset(f"celeba:{FULL_SAMPLE}", 32, split="all", cache_dir=tmp_path / "c")
    assert len(ds) == 300 and ds.images.shape == (300, 32, 32, 3)
    assert ds.labels.shape == (300, 40) and set(np.unique(ds.labels)) <= {0, 1}
    assert "Smiling" in ds.label_names and "Eyeglasses" in ds.label_names
    with Image.open(FULL_SAMPLE / "img_align_celeba" / ds.names[0]) as img:
        assert img.size == (178, 218)
        expected = np.asarray(img.convert("RGB").crop(CELEBA_CROP_BOX).resize((32, 32), Image.BICUBIC))
    np.testing.assert_array_equal(ds.images[0], expected)
    tr = load_dataset(f"celeba:{FULL_SAMPLE}", 32, split="train", cache_dir=tmp_path / "c")
    va = load_dataset(f"celeba:{FULL_SAMPLE}", 32, split="val", cache_dir=tmp_path / "c")
    assert len(tr) + len(va) <= 300 and len(tr) > len(va) > 0


def _check_fashion_mnist(spec: str, n_val: int) -> None:
    ds = load_dataset(spec, split="val")
    assert ds.images.shape == (n_val, 32, 32, 1) and ds.images.dtype == np.uint8
    assert ds.images[:, :2].max() == 0 and ds.images[:, :, -2:].max() == 0  # zero padding
    assert ds.images[:, 2:30, 2:30].max() == 255
    assert ds.labels.shape == (n_val, 10) and np.all(ds.labels.sum(1) == 1)
    assert ds.label_names[0] == "T-shirt/top" and ds.label_names[9] == "Ankle_boot"
    with pytest.raises(DataError, match="use image size 32"):
        load_dataset(spec, 64)


def test_fashion_mnist_is_padded_one_channel_with_class_labels(tmp_path: Path) -> None:
    root = write_fashion_mnist(tmp_path / "fm", n_train=40, n_test=30)
    _check_fashion_mnist(f"fashion-mnist:{root}", 30)
    train_set = load_dataset(f"fashion-mnist:{root}", split="train")
    x, y = fake_images(40, 0)  # what the files hold: the loader pads by 2 and one-hot encodes
    np.testing.assert_array_equal(train_set.images[:, 2:30, 2:30, 0], x)
    np.testing.assert_array_equal(train_set.labels.argmax(1), y)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz is missing"):
        load_dataset(f"fashion-mnist:{root}", split="val")


@pytest.mark.skipif(not Path(FASHION_MNIST_DIR).is_dir(), reason=f"Debian's dataset-fashion-mnist is not installed ({FASHION_MNIST_DIR})")
def test_installed_fashion_mnist_is_read_by_default() -> None:
    _check_fashion_mnist("fashion-mnist", 10000)


@pytest.mark.parametrize(
    "spec_fn, pattern",
    [
        (lambda t: f"folder:{t / 'missing'}", r"missing does not exist"),
        (lambda t: f"folder:{t / 'empty'}", r"empty contains no images"),
        (lambda t: f"celeba:{t / 'empty'}", r"empty is not a CelebA folder: it has no img_align_celeba"),
        (lambda t: "imagenet:/data", r"unknown data kind 'imagenet'"),
        (lambda t: "celeba:", r"has no path"),
        (lambda t: f"fashion-mnist:{t / 'nope'}", r"nope does not exist"),
    ],
)
def test_bad_specs_name_the_problem(tmp_path: Path, spec_fn, pattern: str) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=pattern):
        load_dataset(spec_fn(tmp_path), None, cache_dir=tmp_path / "c")


def test_celeba_attribute_rows_must_match_images(tmp_path: Path) -> None:
    root = _mini_celeba(tmp_path / "a", n=4, listed=3)  # one image not in the attribute file
    with pytest.raises(DataError, match=r"1 image\(s\) that list_attr_celeba.txt does not list \(e.g. 000004.jpg\)"):
        load_dataset(f"celeba:{root}", 16, cache_dir=tmp_path / "c")
    root = _mini_celeba(tmp_path / "b", n=3)
    (root / "img_align_celeba" / "000002.jpg").unlink()
    with pytest.raises(DataError, match=r"lists 1 image\(s\) that are not in .*000002.jpg"):
        load_dataset(f"celeba:{root}", 16, cache_dir=tmp_path / "c")
    root = _mini_celeba(tmp_path / "d", n=3)
    (root / "list_attr_celeba.txt").unlink()
    with pytest.raises(DataError, match="list_attr_celeba.txt is missing"):
        load_dataset(f"celeba:{root}", 16, cache_dir=tmp_path / "c")


def test_all_unreadable_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    (root / "x.jpg").write_bytes(b"nope")
    (root / "y.png").write_bytes(io.BytesIO(b"also nope").getvalue())
    with pytest.warns(DataWarning), pytest.raises(DataError, match="none of the 2 images could be read"):
        load_dataset(f"folder:{root}", 8, split="all", cache_dir=tmp_path / "c")


def test_a_data_set_that_does_not_fit_the_model_is_named_with_both_shapes() -> None:
    ds = ImageDataset(np.zeros((2, 8, 8, 1), np.uint8), None, [], ["a", "b"], "folder:/x", "all")
    ds.check_fits(8, 1)  # fits
    with pytest.raises(DataError, match=r"folder:/x: the training images are 8x8x1 but the model takes 16x16x3"):
        ds.check_fits(16, 3, "training")
    with pytest.raises(DataError, match=r"images are 8x8x1 but the model takes 8x8x3"):
        ds.check_fits(8, 3)
