"""Listing the files under a folder without following a loop of links forever: each real folder
is entered once and each real file listed once (under its first name in sorted order), so a link
cannot make a file count twice (or land in both the training and the validation split)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def list_files(folder: Path, keep: Callable[[str], bool]) -> list[str]:
    """Relative POSIX paths of the files under ``folder`` whose names ``keep`` accepts (hidden
    files and folders skipped), sorted, each real file once."""
    out: list[str] = []
    seen_dirs: set[str] = set()
    seen_files: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:  # reached again through a link: a loop, or a second way in
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and os.path.realpath(os.path.join(dirpath, d)) not in seen_dirs)
        rel = Path(dirpath).relative_to(folder)
        for f in sorted(filenames):
            if f.startswith(".") or not keep(f):
                continue
            real_file = os.path.realpath(os.path.join(dirpath, f))
            if real_file not in seen_files:
                seen_files.add(real_file)
                out.append((rel / f).as_posix())
    out.sort()
    return out
