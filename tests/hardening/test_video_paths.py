"""Video export paths: missing, unwritable, a file for a folder, a folder for a file, existing
files, very long names; and exports interrupted by an exception or a SIGKILL.

The contract (glowcore.ops.video.export_video, via glowcore.io.fileio.atomic_path): a path that cannot
be written raises an ``OSError`` naming it *before* any frame is consumed; an existing file is
replaced atomically when the export succeeds and left byte-for-byte as it was otherwise; no
partial or temporary file is left by an exception or a cancel (a SIGKILL can leave a hidden
``.NAME.*`` temporary file, never a damaged NAME).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from glowcore.ops.video import export_video, probe_video

from ._common import LONG, count

SUFFIXES = [".mp4", ".gif", ".webp"]


def frames(n: int = 6, size: int = 16):
    for i in range(n):
        f = np.zeros((size, size, 3), np.uint8)
        f[..., 0] = 30 * i % 256
        f[4:8, i % 8 : i % 8 + 4] = 255
        yield f


class _Counting:
    """A frame source that counts what was taken from it."""

    def __init__(self, n: int = 6):
        self.taken = 0
        self.n = n

    def __iter__(self):
        for f in frames(self.n):
            self.taken += 1
            yield f


def _unwritable_targets(tmp: Path) -> dict[str, tuple[Path, type[OSError]]]:
    a_file = tmp / "a_file.txt"
    a_file.write_text("x")
    (tmp / "a_folder.mp4").mkdir()
    locked = tmp / "locked"
    locked.mkdir()
    return {
        "missing folder": (tmp / "no" / "such" / "clip{}", FileNotFoundError),
        "parent is a file": (a_file / "clip{}", NotADirectoryError),
        "path is a folder": (tmp / "a_folder.mp4", IsADirectoryError),
        "system folder": (Path("/sys/glow_explorer_clip{}"), OSError),  # root may not write here either
        "name too long": (tmp / ("x" * 300 + "{}"), OSError),
    }


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_unwritable_paths_fail_before_any_frame_with_a_clear_error(tmp_path: Path, suffix: str) -> None:
    for what, (template, kind) in _unwritable_targets(tmp_path).items():
        target = Path(str(template).format(suffix)) if "{}" in str(template) else template
        if what == "path is a folder" and suffix != ".mp4":
            target = tmp_path / f"a_folder{suffix}"
            target.mkdir(exist_ok=True)
        src = _Counting()
        with pytest.raises(kind) as info:
            export_video(src, target, fps=10, scale=1)
        assert str(target)[:60] in str(info.value), f"{what}: {info.value}"
        assert src.taken == 0, f"{what}: {src.taken} frames were rendered before the error"
        count("video.paths")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert all(not n.startswith(".") for n in left), left  # no temporary files


def test_a_read_only_folder(tmp_path: Path) -> None:
    """A folder without write permission: refused before rendering; (root may write anyway, and
    then the file must be complete)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        target = folder / "clip.gif"
        try:
            export_video(frames(), target, fps=10, scale=1)
        except PermissionError as e:
            assert str(target) in str(e)
            assert not target.exists()
        else:
            assert os.geteuid() == 0  # only root gets through, and the file is complete
            assert probe_video(target).frames == 6
    finally:
        folder.chmod(0o700)
    count("video.paths")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_an_existing_file_is_replaced_only_by_a_complete_export(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"clip{suffix}"
    target.write_bytes(b"previous contents")
    target.chmod(0o640)

    def failing():
        yield from frames(3)
        raise RuntimeError("the renderer failed")

    with pytest.raises(RuntimeError, match="renderer failed"):
        export_video(failing(), target, fps=10, scale=1)
    assert target.read_bytes() == b"previous contents"
    with pytest.raises(ValueError, match="same size"):  # a bad frame half-way
        export_video(list(frames(3)) + [np.zeros((8, 8, 3), np.uint8)], target, fps=10, scale=1)
    assert target.read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    export_video(frames(), target, fps=10, scale=2)
    info = probe_video(target)
    assert info.width == 32 and info.frames >= 5
    assert target.stat().st_mode & 0o777 == 0o640  # the file keeps its permissions
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    # a symlink in the way is replaced by the file (the file it pointed to is not touched)
    other = tmp_path / "elsewhere.bin"
    other.write_bytes(b"keep me")
    link = tmp_path / f"link{suffix}"
    link.symlink_to(other)
    export_video(frames(), link, fps=10, scale=1)
    assert not link.is_symlink() and other.read_bytes() == b"keep me"
    count("video.paths", 4)


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_export_killed_at_random_moments_leaves_old_or_complete_file(tmp_path: Path, suffix: str) -> None:
    """A forked child exports again and again over the same file; SIGKILL lands mid-encode."""
    target = tmp_path / f"clip{suffix}"
    target.write_bytes(b"previous contents")
    big = [np.full((32, 32, 3), (i * 9) % 256, np.uint8) for i in range(40)]
    rng = random.Random(3)
    kills = 12 if not LONG else 100
    t0 = time.monotonic()
    export_video(big, tmp_path / f"timing{suffix}", fps=20, scale=4)  # how long one export takes here
    span = 2.5 * (time.monotonic() - t0)
    (tmp_path / f"timing{suffix}").unlink()
    outcomes = {"old": 0, "new": 0}
    for _ in range(kills):
        pid = os.fork()
        if pid == 0:
            try:
                while True:
                    export_video(big, target, fps=20, scale=4)
            finally:
                os._exit(3)
        time.sleep(rng.uniform(0.0, span))  # before, during or after the first complete export
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), "the export loop stopped by itself (it failed)"
        if target.read_bytes() == b"previous contents":
            outcomes["old"] += 1
        else:
            info = probe_video(target)
            assert (info.width, info.height) == (128, 128) and info.frames >= 20, info
            outcomes["new"] += 1
        count("video.kills")
    # the only things ever left: the file, and hidden temporaries of killed exports
    assert all(p.name == target.name or p.name.startswith(f".{target.name}.") for p in tmp_path.iterdir())
    assert outcomes["new"] > 0
