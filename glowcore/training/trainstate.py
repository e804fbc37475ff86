"""A training run's checkpoint state: optimizer moments, RNG states and extra tensors (the live
weights under Polyak averaging) beside a model folder, written atomically and read back exactly.

``RUN_DIR/latest/`` holds the model files (:func:`glowcore.io.checkpoint.save_model`) plus
``trainer_state.json`` (scalars: step, epoch, optimizer groups, RNG states, the list of tensor
files) and ``trainer_state.safetensors`` (with ``trainer_state-N.safetensors`` when the tensors
exceed :data:`STATE_SHARD_BYTES`). Nothing is pickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from ..io.checkpoint import save_model
from ..io.fileio import atomic_path, atomic_write_text
from ..model import Glow

__all__ = ["STATE_JSON", "STATE_TENSORS", "STATE_SHARD_BYTES", "TrainingError", "load_trainer_state"]

STATE_JSON = "trainer_state.json"
STATE_TENSORS = "trainer_state.safetensors"
STATE_FORMAT = "glow-explorer-trainer-state"
STATE_VERSION = 1
# every state file stays under 15 MiB (machines that copy files back cap them at 16 MiB)
STATE_SHARD_BYTES = 15 * 2**20
_SHARD_NAME = re.compile(r"trainer_state(-[1-9][0-9]{0,3})?\.safetensors")


class TrainingError(ValueError):
    """Training cannot start or cannot go on (diverged, run folder mismatch); the message says why."""


def _iso_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _rng_state() -> tuple[dict, dict[str, Tensor]]:
    py = random.getstate()
    np_state = np.random.get_state()
    meta = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {"kind": np_state[0], "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
    }
    tensors = {"rng.torch": torch.get_rng_state(), "rng.numpy_keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.uint32).view(np.int32).copy())}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    return meta, tensors


def _set_rng_state(meta: dict, tensors: dict[str, Tensor]) -> None:
    py = meta["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = meta["numpy"]
    keys = tensors["rng.numpy_keys"].numpy().view(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict, dict[str, Tensor]]:
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, Tensor):
                tensors[f"optim.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    groups = []
    for g in sd["param_groups"]:
        groups.append({k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()})
    return {"param_groups": groups, "scalars": scalars}, tensors


def _unflatten_optimizer(meta: dict, tensors: dict[str, Tensor]) -> dict:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if not key.startswith("optim."):
            continue
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = v
    for idx, sc in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(sc)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def load_trainer_state(folder: str | os.PathLike) -> tuple[dict, dict[str, Tensor]]:
    """The JSON scalars and the tensors of a checkpoint's trainer state (``RUN_DIR/latest``)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    jpath = folder / STATE_JSON
    if not jpath.is_file() or not (folder / STATE_TENSORS).is_file():
        raise TrainingError(f"{folder} has no trainer state ({STATE_JSON} and {STATE_TENSORS}); cannot resume from it")
    try:
        meta = json.loads(jpath.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise TrainingError(f"{jpath}: cannot be read ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != STATE_FORMAT or not isinstance(meta.get("version"), int) or meta["version"] > STATE_VERSION:
        raise TrainingError(f"{jpath}: not a trainer state this version understands")
    files = meta.get("tensor_files", [STATE_TENSORS])
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and _SHARD_NAME.fullmatch(f) for f in files):
        raise TrainingError(f"{jpath}: 'tensor_files' must list trainer_state[-N].safetensors files in its folder")
    tensors: dict[str, Tensor] = {}
    for name in files:
        tpath = folder / name
        try:
            tensors.update(load_file(str(tpath)))
        except Exception as e:
            raise TrainingError(f"{tpath}: not a valid safetensors file ({e})") from None
    return meta, tensors


def _shards(tensors: dict[str, Tensor], limit: int) -> list[dict[str, Tensor]]:
    """``tensors`` split into groups of at most ``limit`` bytes each (a larger tensor alone)."""
    out: list[dict[str, Tensor]] = [{}]
    size = 0
    for k, v in tensors.items():
        n = v.numel() * v.element_size()
        if out[-1] and size + n > limit:
            out.append({})
            size = 0
        out[-1][k] = v
        size += n
    return out


def _replace_dir(tmp: Path, target: Path) -> None:
    """Swap a fully written folder into place (old one moved aside, then removed).

    A complete copy can be found at every moment, whenever the process is killed: ``target``, or
    ``.target.old`` between the two renames (never deleted while ``target`` is missing)."""
    old = target.parent / f".{target.name}.old"
    if target.exists():
        if old.exists():
            shutil.rmtree(old)  # left over from an earlier swap; target is complete
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _recover_dir(target: Path) -> None:
    """Put back the complete copy a swap killed between its two renames left aside."""
    old = target.parent / f".{target.name}.old"
    if not target.exists() and old.is_dir():
        with contextlib.suppress(FileNotFoundError):  # another process got there first
            os.replace(old, target)



def _save_checkpoint(folder: Path, model: Glow, opt: torch.optim.Optimizer, fused: bool, scalars: dict,
                     extra: Optional[dict[str, Tensor]] = None) -> None:
    """Model folder + trainer state (optimizer, RNGs, ``extra`` tensors), written to a temporary
    folder and swapped in. The state's tensors are split into files of at most
    :data:`STATE_SHARD_BYTES` each (so every file of a run can be copied where files are capped)."""
    from safetensors.torch import save_file

    tmp = folder.parent / f".{folder.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp)
    if fused:
        opt.found_inf = None  # not part of the state
    opt_meta, opt_tensors = _flatten_optimizer(opt)
    rng_meta, rng_tensors = _rng_state()
    shards = _shards({**opt_tensors, **rng_tensors, **(extra or {})}, STATE_SHARD_BYTES)
    names = [STATE_TENSORS] + [f"trainer_state-{i}.safetensors" for i in range(1, len(shards))]
    for name, shard in zip(names, shards):
        save_file(shard, str(tmp / name))
    meta = {"format": STATE_FORMAT, "version": STATE_VERSION, **scalars, "optimizer": opt_meta, "rng": rng_meta,
            "tensor_files": names, "saved": _iso_now()}
    with atomic_path(tmp / STATE_JSON) as p:
        p.write_text(json.dumps(meta) + "\n", encoding="utf-8")
    _replace_dir(tmp, folder)


# ------------------------------------------------------------------------------ the run folder
def _trim_metrics(path: Path, step: int) -> None:
    """Drop what a killed session logged after its last checkpoint (and a half-written last line)."""
    if not path.is_file():
        return
    raw = path.read_text(encoding="utf-8", errors="replace")
    keep = []
    for line in raw.splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        try:
            if json.loads(line).get("step", 0) > step:
                continue
        except (ValueError, AttributeError):
            continue
        keep.append(line)
    text = "".join(keep)
    if text != raw:
        atomic_write_text(path, text)


def _latest_dir(run_dir: Path) -> Optional[Path]:
    for name in ("latest", ".latest.old"):
        p = run_dir / name
        if (p / STATE_JSON).is_file():
            return p
    return None
