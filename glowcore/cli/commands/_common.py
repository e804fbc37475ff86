"""Shared pieces of the latent-space commands (encode, edit, interpolate, inpaint, directions)."""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

LATENT_SUFFIX = ".npz"


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model folder, .safetensors file or bundled name (default: the bundled face model)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")


def console(label: str):
    from ...base.progress import ConsoleProgress

    return ConsoleProgress(label)


def save_latents(path: str | os.PathLike, latent, names: Sequence[str]) -> None:
    """Write latents to an ``.npz`` file (flat float32 rows, the level shapes, the item names)."""
    from ...io.fileio import atomic_path

    flat = latent.flatten().detach().cpu().numpy().astype(np.float32)
    shapes = np.asarray(latent.shapes, dtype=np.int64)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, latents=flat, shapes=shapes, names=np.asarray([str(n) for n in names]))


def load_latents(path: str | os.PathLike, model):
    """Read an ``.npz`` written by ``glow encode`` (never unpickles); check it fits ``model``."""
    import torch

    from ...latent import Latent

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    try:
        with np.load(p, allow_pickle=False) as data:
            flat, shapes = data["latents"], data["shapes"]
            names = [str(n) for n in data["names"]] if "names" in data else [f"{p.stem}[{i}]" for i in range(len(flat))]
    except (KeyError, TypeError, ValueError, OSError, EOFError, zipfile.BadZipFile) as e:  # (truncated: BadZipFile, EOFError)
        raise ValueError(f"{p}: not a latent file written by `glow encode` ({e})") from None
    try:
        shapes_t = tuple(tuple(int(v) for v in s) for s in shapes)
    except (TypeError, ValueError):
        raise ValueError(f"{p}: its 'shapes' array is not a list of latent shapes") from None
    if shapes_t != tuple(model.latent_shapes):
        raise ValueError(f"{p}: latents of shapes {shapes_t} do not fit this model (its latent shapes are {model.latent_shapes})")
    try:
        latent = Latent.from_flat(torch.from_numpy(np.ascontiguousarray(flat, dtype=np.float32)), shapes_t)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{p}: its latents do not fit the shapes it records ({e})") from None
    if len(names) != latent.batch_size:
        names = [f"{p.stem}[{i}]" for i in range(latent.batch_size)]
    return latent.to(model.device), names


def inputs_to_latent(model, items: Sequence[str], frame_face: bool = True, temperature: float = 0.7, quiet: bool = False,
                     detail_temperature: Optional[float] = None):
    """Turn command-line inputs into one :class:`Latent`: photos (framed and encoded), latent
    files (``.npz`` from ``glow encode``, every item) and ``seed:N`` (a sample at ``temperature``,
    the finest levels at ``detail_temperature`` when given)."""
    from ...base.limits import check_seed
    from ...latent import Latent
    from ...ops.photo import load_photo

    parts, names = [], []
    for item in items:
        if item.startswith("seed:"):
            try:
                seed = int(item[5:])
            except ValueError:
                raise ValueError(f"{item!r}: expected seed:N with an integer N") from None
            check_seed(seed, item)
            parts.append(model.sample_latent(1, temperature, seed, detail_temperature=detail_temperature))
            names.append(item)
        elif item.lower().endswith(LATENT_SUFFIX):
            lat, nms = load_latents(item, model)
            parts.append(lat)
            names.extend(nms)
        else:
            img, msg = load_photo(item, model.config.image_size, frame_face, channels=model.config.channels)
            if not quiet:
                print(msg, file=sys.stderr)
            parts.append(model.encode(img))
            names.append(item)
    return Latent.cat(parts), names


def output_path(path: str | os.PathLike, suffixes: Sequence[str], what: str) -> Path:
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise ValueError(f"{p}: the {what} must end in {' or '.join(suffixes)}")
    return p
