"""Atomic file writing: a temporary file in the target's folder, then a rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_writable"]


def check_writable(path: str | os.PathLike, probe: bool = True) -> Path:
    """Raise a clear ``OSError`` naming ``path`` if a file cannot be written there: its folder is
    missing, is a file or is not writable, or ``path`` is a folder. With ``probe`` a temporary
    file is created and removed there (the only sure test: root passes permission checks, a
    read-only file system does not show in them). Cheap: call it before long work whose result
    goes to ``path``."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        is_dir = target.is_dir()
    except OSError as e:  # a name too long, a loop of links
        raise type(e)(e.errno, f"cannot write {target}: {e.strerror}") from None
    if is_dir:
        raise IsADirectoryError(f"cannot write {target}: it is a folder")
    if not folder.exists():
        raise FileNotFoundError(f"cannot write {target}: folder {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"cannot write {target}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write {target}: folder {folder} is not writable")
    if probe:
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=".probe", dir=folder)
        except OSError as e:
            raise type(e)(e.errno, f"cannot write {target}: {e.strerror}") from None
        os.close(fd)
        os.unlink(tmp)
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On any exception (cancellation included) the temporary file is removed and ``path`` is left
    as it was: either the old file or nothing, never a partial file. ``suffix`` (default: the
    target's own) lets writers that choose a format from the extension see the right one.
    """
    target = check_writable(path, probe=False)  # (creating the temporary file is the probe)
    folder = target.parent if str(target.parent) else Path(".")
    mode = _target_mode(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=suffix if suffix is not None else target.suffix[:20], dir=folder)
    except OSError as e:  # permissions that os.access does not see (root), read-only file systems
        raise type(e)(e.errno, f"cannot write {target}: {e.strerror}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, mode)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp_path, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(e, OSError) and e.errno is not None and e.filename is None:  # e.g. the disk is full
            raise type(e)(e.errno, f"cannot write {target}: {e.strerror or e}") from None
        raise


def _target_mode(target: Path) -> int:
    """The existing file's permissions, else what a plain ``open(path, "w")`` would give."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
