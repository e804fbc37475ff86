"""CelebA list files, label CSVs and Fashion-MNIST idx files against :mod:`glowcore.data.datasets`.

Rows that do not match the images, wrong column counts, non-numeric values, byte-order marks,
CRLF line ends, empty files, other encodings, NUL bytes, truncated gzip streams. Every failure
must be a :class:`~glowcore.data.datasets.DataError` naming the file (or its folder); a file that loads
must give the labels an independent parse of the same text gives.
"""

from __future__ import annotations

import csv
import gzip
import io
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from glowcore.data import sources as gsources
from glowcore.data.datasets import DataError

from ._common import count, fuzz_settings

IMAGES = ["a.png", "b.png", "sub/c.png"]


def _folder(tmp: Path) -> Path:
    root = tmp / "photos"
    for n in IMAGES:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        (root / n).write_bytes(b"")  # the parsers only list names; decoding is tested elsewhere
    return root


def _oracle_csv(text: str) -> tuple[list[str], dict[str, list[int]]] | None:
    """An independent reading of a labels CSV: None where it must be refused."""
    try:
        rows = [r for r in csv.reader(io.StringIO(text[1:] if text.startswith("\ufeff") else text, newline=""))
                if r and any(c.strip() for c in r)]
    except csv.Error:
        return None
    if len(rows) < 2 or not rows[0][1:]:
        return None
    names = [c.strip() for c in rows[0][1:]]
    table = {}
    for r in rows[1:]:
        if len(r) != len(names) + 1:
            return None
        try:
            table[r[0].strip().replace("\\", "/")] = [1 if float(v) > 0 else 0 for v in r[1:]]
        except ValueError:
            return None
    if set(table) != set(IMAGES):
        return None
    return names, table


def _check_csv(root: Path, path: Path, text: str | None) -> None:
    try:
        src = gsources._folder_source(root, "all", path)
    except DataError as e:
        assert path.name in str(e), str(e)
        if text is not None:
            assert _oracle_csv(text) is None, f"refused a valid CSV: {e}"
        return
    assert text is not None
    want = _oracle_csv(text)
    assert want is not None, "accepted a CSV the oracle refuses"
    names, table = want
    assert src.label_names == names
    expected = np.array([table[n] for n in src.names], np.uint8).reshape(len(src.names), len(names))
    np.testing.assert_array_equal(src.labels, expected)


# ------------------------------------------------------------------------------ label CSVs
def test_label_csv_cases(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    good = "filename,Smiling,Male\na.png,1,-1\nb.png,0,1\nsub/c.png,1,1\n"
    cases = {
        "good": good,
        "bom": "\ufeff" + good,
        "crlf": good.replace("\n", "\r\n"),
        "cr_only": good.replace("\n", "\r"),
        "blank_lines_and_spaces": "\n\nfilename, Smiling ,Male\n\n a.png ,1,-1\nb.png,0.0,1e3\nsub\\c.png,+1,1\n\n",
        "empty": "",
        "header_only": "filename,Smiling\n",
        "no_attributes": "filename\na.png\nb.png\nsub/c.png\n",
        "missing_row": "filename,Smiling\na.png,1\nb.png,1\n",
        "extra_row": "filename,Smiling\na.png,1\nb.png,1\nsub/c.png,0\nd.png,1\n",
        "short_row": "filename,Smiling,Male\na.png,1\nb.png,0,1\nsub/c.png,1,1\n",
        "long_row": "filename,Smiling\na.png,1,1\nb.png,0\nsub/c.png,1\n",
        "non_numeric": "filename,Smiling\na.png,yes\nb.png,0\nsub/c.png,1\n",
        "nan_inf": "filename,Smiling\na.png,nan\nb.png,inf\nsub/c.png,-inf\n",
        "nul_byte": "filename,Smiling\na.png,1\x00\nb.png,0\nsub/c.png,1\n",
        "quoted_newline": 'filename,Smiling\n"a.png",1\n"b\n.png",0\nsub/c.png,1\n',
        "semicolons": "filename;Smiling\na.png;1\nb.png;0\nsub/c.png;1\n",
        "huge_field": "filename,Smiling\na.png," + "1" * 200_000 + "\nb.png,0\nsub/c.png,1\n",
    }
    for name, text in cases.items():
        p = tmp_path / f"{name}.csv"
        p.write_text(text, encoding="utf-8", newline="")
        _check_csv(root, p, text)
        count("labels.csv")
    for name, blob in {"latin1": "filename,Sméling\na.png,1\nb.png,0\nsub/c.png,1\n".encode("latin-1"),
                       "utf16": good.encode("utf-16"), "binary": bytes(range(256)) * 4}.items():
        p = tmp_path / f"{name}.csv"
        p.write_bytes(blob)
        _check_csv(root, p, None)
        count("labels.csv")
    with pytest.raises(DataError, match="missing.csv"):
        gsources._folder_source(root, "all", tmp_path / "missing.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match="dir.csv"):
        gsources._folder_source(root, "all", tmp_path / "dir.csv")
    count("labels.csv", 2)


CELL = st.one_of(
    st.sampled_from(["1", "-1", "0", "1.0", " 1", "+1", "", "x", "nan", "1e400", "\ufeff1", "NaN"]),
    st.text(max_size=4),
)


@st.composite
def csv_text(draw) -> str:
    names = draw(st.lists(st.sampled_from(["Smiling", "Male", "Young", "x,y", "", "Ünïcode"]), min_size=0, max_size=3))
    header = ["filename"] + names
    rows = [header]
    images = draw(st.lists(st.sampled_from(IMAGES + ["d.png", "sub\\c.png", ""]), max_size=5))
    for img in images:
        width = len(names) + draw(st.sampled_from([0, 0, 0, -1, 1]))
        rows.append([img] + [draw(CELL) for _ in range(max(0, width))])
    buf = io.StringIO()
    csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"]))).writerows(rows)
    text = buf.getvalue()
    if draw(st.booleans()):
        text = "\ufeff" + text
    if draw(st.integers(0, 9)) == 0 and text:  # a cut anywhere
        text = text[: draw(st.integers(0, len(text)))]
    return text


def test_fuzz_label_csvs(tmp_path_factory) -> None:
    tmp = tmp_path_factory.mktemp("csv")
    root = _folder(tmp)

    @fuzz_settings(200)
    @given(text=csv_text())
    def check(text: str) -> None:
        p = tmp / "labels.csv"
        p.write_text(text, encoding="utf-8", newline="")
        _check_csv(root, p, text)
        count("labels.csv.fuzz")

    check()


# ------------------------------------------------------------------------- CelebA list files
ATTRS = ["Smiling", "Male", "Young"]
CELEB = ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg"]


def _celeba(tmp: Path, attr: str | bytes, part: str | bytes | None) -> Path:
    root = tmp / "celeba"
    (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    for n in CELEB:
        (root / "img_align_celeba" / n).write_bytes(b"")
    for name, content in (("list_attr_celeba.txt", attr), ("list_eval_partition.txt", part)):
        f = root / name
        if content is None:
            f.unlink(missing_ok=True)
        elif isinstance(content, bytes):
            f.write_bytes(content)
        else:
            f.write_text(content, encoding="utf-8", newline="")
    return root


def _attr_text(rows=None, count_line=None, names=None, sep=" ", eol="\n") -> str:
    rows = rows if rows is not None else [[n] + ["1", "-1", "1"] for n in CELEB]
    lines = [str(len(rows)) if count_line is None else count_line, sep.join(names or ATTRS)] + [sep.join(r) for r in rows]
    return eol.join(lines) + eol


PART_GOOD = "".join(f"{n} {i % 2}\n" for i, n in enumerate(CELEB))


def _check_celeba(root: Path, split: str = "all") -> object:
    try:
        return gsources._celeba_source(root, split)
    except DataError as e:
        msg = str(e)
        assert any(s in msg for s in ("list_attr_celeba.txt", "list_eval_partition.txt", str(root))), msg
        return None


def test_celeba_list_cases(tmp_path: Path) -> None:
    good = _attr_text()
    ok_cases = {
        "good": (good, PART_GOOD),
        "crlf": (good.replace("\n", "\r\n"), PART_GOOD.replace("\n", "\r\n")),
        "bom": ("\ufeff" + good, "\ufeff" + PART_GOOD),
        "tabs_and_spaces": (_attr_text(sep=" \t  "), PART_GOOD),
        "no_partition": (good, None),
        "zeros_as_negatives": (_attr_text(rows=[[n, "0", "0", "1"] for n in CELEB]), PART_GOOD),
    }
    for name, (attr, part) in ok_cases.items():
        src = _check_celeba(_celeba(tmp_path / name, attr, part))
        assert src is not None, name
        assert src.label_names == ATTRS and src.labels.shape == (4, 3), name
        count("labels.celeba")
    bad_cases = {
        "empty": ("", PART_GOOD),
        "count_only": ("4\n", PART_GOOD),
        "count_wrong": (_attr_text(count_line="5"), PART_GOOD),
        "count_not_number": (_attr_text(count_line="four"), PART_GOOD),
        "count_huge": (_attr_text(count_line="9" * 5000), PART_GOOD),
        "short_row": (_attr_text(rows=[[n, "1", "1"] for n in CELEB]), PART_GOOD),
        "long_row": (_attr_text(rows=[[n, "1", "1", "1", "1"] for n in CELEB]), PART_GOOD),
        "non_numeric": (_attr_text(rows=[[n, "1", "yes", "1"] for n in CELEB]), PART_GOOD),
        "float_values": (_attr_text(rows=[[n, "1.0", "1", "1"] for n in CELEB]), PART_GOOD),
        "unknown_image": (_attr_text(rows=[[n, "1", "1", "1"] for n in CELEB[:3]] + [["999999.jpg", "1", "1", "1"]]), PART_GOOD),
        "image_not_listed": (_attr_text(rows=[[n, "1", "1", "1"] for n in CELEB[:3]]), PART_GOOD),
        "partition_bad_code": (good, PART_GOOD.replace(" 1\n", " 7\n")),
        "partition_missing_image": (good, "".join(f"{n} 0\n" for n in CELEB[:2])),
        "partition_three_columns": (good, "".join(f"{n} 0 0\n" for n in CELEB)),
        "binary": (bytes(range(256)) * 8, PART_GOOD),
        "partition_binary": (good, bytes(range(256))),
    }
    for name, (attr, part) in bad_cases.items():
        assert _check_celeba(_celeba(tmp_path / name, attr, part)) is None, name
        count("labels.celeba")
    # a split that the partition file leaves empty
    src = _check_celeba(_celeba(tmp_path / "no_val", good, "".join(f"{n} 0\n" for n in CELEB)), "val")
    assert src is None
    count("labels.celeba")


@st.composite
def celeba_texts(draw) -> tuple[str, str | None]:
    n_rows = draw(st.integers(0, 5))
    rows = []
    for i in range(n_rows):
        name = draw(st.sampled_from(CELEB + ["x.jpg", ""])) if draw(st.integers(0, 5)) == 0 else CELEB[i % 4]
        width = 3 + draw(st.sampled_from([0, 0, 0, -1, 1]))
        rows.append([name] + [draw(st.sampled_from(["1", "-1", "0", "2", "x", "１", "-0"])) for _ in range(max(0, width))])
    count_line = draw(st.sampled_from([None, "0", "-1", "x", "", " 4 extra"]))
    attr = _attr_text(rows=rows, count_line=count_line, eol=draw(st.sampled_from(["\n", "\r\n"])))
    if draw(st.booleans()):
        attr = "\ufeff" + attr
    part = draw(st.one_of(st.none(), st.just(PART_GOOD), st.text(max_size=80)))
    return attr, part


def test_fuzz_celeba_lists(tmp_path_factory) -> None:
    tmp = tmp_path_factory.mktemp("celeba")

    @fuzz_settings(150)
    @given(texts=celeba_texts(), split=st.sampled_from(["all", "train", "val"]))
    def check(texts, split) -> None:
        attr, part = texts
        root = _celeba(tmp, attr, part)
        src = _check_celeba(root, split)
        if src is not None:
            assert src.labels.shape == (len(src.names), len(src.label_names))
            assert set(np.unique(src.labels)) <= {0, 1}
            assert set(src.names) <= set(CELEB)
        count("labels.celeba.fuzz")

    check()


# ------------------------------------------------------------------ Fashion-MNIST idx files
def _idx(dims: tuple[int, ...], body: bytes | None = None) -> bytes:
    head = bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    return head + (body if body is not None else bytes(int(np.prod(dims))))


def test_fuzz_idx_files(tmp_path_factory) -> None:
    tmp = tmp_path_factory.mktemp("idx")
    good = gzip.compress(_idx((3, 28, 28)))

    @fuzz_settings(150)
    @given(kind=st.sampled_from(["cut_gz", "cut_raw", "dims", "bytes", "ndim"]), cut=st.integers(0, len(good)),
           dims=st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=5), blob=st.binary(max_size=64), ndim=st.integers(0, 255))
    def check(kind, cut, dims, blob, ndim) -> None:
        p = tmp / "train-images-idx3-ubyte.gz"
        if kind == "cut_gz":
            p.write_bytes(good[:cut])
        elif kind == "cut_raw":
            p.write_bytes(gzip.compress(_idx((3, 28, 28))[: cut % 2400]))
        elif kind == "dims":
            p.write_bytes(gzip.compress(_idx(tuple(dims), body=bytes(min(4096, int(np.prod([d % 97 for d in dims])) if dims else 0)))))
        elif kind == "ndim":
            p.write_bytes(gzip.compress(bytes([0, 0, 8, ndim]) + blob))
        else:
            p.write_bytes(blob)
        try:
            arr = gsources._read_idx(p)
        except DataError as e:
            assert p.name in str(e), str(e)
        else:
            assert arr.dtype == np.uint8
        count("labels.idx.fuzz")

    check()


def test_idx_gzip_bomb_is_refused(tmp_path: Path) -> None:
    """A small .gz that expands far beyond any Fashion-MNIST file is refused without inflating it all."""
    p = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(p, "wb", compresslevel=9) as fh:
        fh.write(_idx((1, 1, 1)))
        chunk = bytes(1 << 24)
        for _ in range(20):  # 320 MiB of zeros, about 320 kB on disk
            fh.write(chunk)
    assert p.stat().st_size < 1 << 20
    with pytest.raises(DataError, match=p.name):
        gsources._read_idx(p)
    count("labels.idx.bomb")
