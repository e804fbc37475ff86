"""Checks the commands make before any work: an output never replaces one of the command's inputs
(compared by resolved path and by inode) unless ``--overwrite-input`` is given, nothing is ever
written inside the installed package (the bundled models, glowcore itself), and numbers are in
range."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Iterable, Optional

from ...base.limits import MAX_TEMPERATURE, check_seed, number_in


def add_overwrite_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite-input", action="store_true", help="allow the output to replace one of the inputs (refused otherwise)")


def package_dirs() -> list[Path]:
    """Folders of the installed package that no command may write into."""
    import glowcore

    from ...io.checkpoint import bundled_models_dir

    return [bundled_models_dir().resolve(), Path(glowcore.__file__).resolve().parent]


def _resolved(p: Path) -> Path:
    try:
        return p.expanduser().resolve()
    except (OSError, RuntimeError):  # a loop of links
        return p.absolute()


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True if ``a`` and ``b`` are one file: the same inode, or the same resolved path."""
    try:
        if os.path.samefile(a, b):
            return True
    except (OSError, ValueError):
        pass
    return _resolved(Path(a)) == _resolved(Path(b))


def inside_package(path: str | os.PathLike) -> Optional[Path]:
    """The package folder ``path`` lies in, or None."""
    p = _resolved(Path(path))
    for d in package_dirs():
        if p == d or d in p.parents:
            return d
    return None


def check_outputs(outputs: Iterable, inputs: Iterable, overwrite_input: bool = False) -> None:
    """Refuse (ValueError naming the file) an output that is one of ``inputs`` or lies inside the
    installed package. ``None`` entries are ignored; input folders count with their files."""
    ins: list[Path] = []
    for item in inputs:
        if item is None or str(item).startswith("seed:"):
            continue
        p = Path(item)
        ins.append(p)
        if p.is_dir():
            ins.extend(q for q in p.iterdir() if q.is_file())
    for out in outputs:
        if out is None:
            continue
        where = inside_package(out)
        if where is not None:
            raise ValueError(f"{out}: is inside the installed package ({where}), which no command changes; write it somewhere else")
        if overwrite_input:
            continue
        for inp in ins:
            if same_file(out, inp):
                raise ValueError(f"{out}: is also an input ({inp}); writing it would destroy the input: "
                                 "choose another output (or give --overwrite-input)")


def model_files(model: Optional[str]) -> list[Path]:
    """The files of the model a command reads (a folder's files, or the single file)."""
    from ...io.checkpoint import CheckpointError, resolve_model_path

    try:
        p = resolve_model_path(model)
    except CheckpointError:
        return []  # load_model says what is wrong
    return [q for q in p.iterdir() if q.is_file()] if p.is_dir() else [p]


def temperature(value: float, what: str = "--temperature") -> float:
    return number_in(what, value, 0.0, MAX_TEMPERATURE)


def sampling_temperatures(t: Optional[float], detail: Optional[float]) -> tuple[float, Optional[float]]:
    """The temperature and detail temperature a command samples at: without ``-t`` (``t`` None),
    the measured defaults (``glowcore.model.DEFAULT_TEMPERATURE``, ``DEFAULT_DETAIL_TEMPERATURE``;
    ``--detail-t`` replacing the latter); with ``-t``, that temperature on every level unless
    ``--detail-t`` sets the finest apart. Each checked (one line for a bad one)."""
    from ...model import DEFAULT_DETAIL_TEMPERATURE, DEFAULT_TEMPERATURE

    if t is None:
        t, detail = DEFAULT_TEMPERATURE, (DEFAULT_DETAIL_TEMPERATURE if detail is None else detail)
    return temperature(t), (None if detail is None else temperature(detail, "--detail-t"))


def seed(value: int, what: str = "--seed") -> int:
    return check_seed(value, what)


def check_model_decodes(model, where) -> None:
    """Refuse a model whose weights, though finite, blow up: decoding its mean latent (the most
    typical face) gives mostly non-finite or far-out pixels, which the damped decoding would turn
    into flat grey or two-colour pictures. (A sane model: none; measured on the bundled model and
    the tests' models.)"""
    import torch

    from ...decoding.stable import blown_pixels

    with torch.inference_mode():
        raw = model.reverse(model.sample_latent(1, 0.0, 0))
    share = float(blown_pixels(raw).float().mean())
    if share > 0.5:
        raise ValueError(f"{where}: the model's weights blow up: decoding its mean latent gives non-finite or far-out values "
                         f"in {share:.0%} of the pixels; its pictures would be flat grey or noise")
