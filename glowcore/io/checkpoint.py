"""Model files: safetensors weights plus a JSON config. Nothing is ever unpickled.

A model is either

* a **directory** holding ``config.json`` and the weights file it names (``model.safetensors``), or
* **one file** ``NAME.safetensors`` whose header metadata carries the same JSON config.

The config records the format and its version, the architecture, the preprocessing, the weights'
storage dtype and SHA-256 (directory form), optional training metadata and the named attribute
directions (their vectors are stored in the weights file under ``directions.NAME``).
Weights may be stored as float16; they always load as float32.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from .fileio import atomic_path, atomic_write_bytes
from ..nn.dequant import DEQUANT_STEPS
from ..nn.priors import FittedNoise
from ..base.limits import MAX_LEVELS, check_direction_info, check_direction_name
from ..model import Glow, GlowConfig

__all__ = [
    "CheckpointError",
    "FORMAT",
    "FORMAT_VERSION",
    "DEFAULT_MODEL",
    "save_model",
    "load_model",
    "read_config",
    "bundled_models_dir",
    "bundled_model_names",
    "resolve_model_path",
    "default_device",
]

FORMAT = "glow-explorer-model"
FORMAT_VERSION = 1
DEFAULT_MODEL = "celeba64"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
DIRECTION_PREFIX = "directions."
PRIOR_MEAN, PRIOR_FACTOR = "sampling_prior.mean", "sampling_prior.factor"  # Glow.sampling_prior
PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin"}
#: Architectures beyond these are refused before anything is allocated.
MAX_PARAMETERS = 2_000_000_000
MAX_FLOW_STEPS = 10_000  # levels x steps
MAX_LATENT_DIM = 2**28  # channels x image_size**2


class CheckpointError(ValueError):
    """A model file or directory that cannot be loaded; the message names the file and problem."""


def _net_size(cin: int, hidden: int, cout: int) -> int:
    """Values of a :class:`~glowcore.nn.coupling.CouplingNet`: 3x3, 1x1, then ZeroConv2d's 3x3 and log-scales."""
    return (cin * hidden * 9 + hidden) + (hidden * hidden + hidden) + (hidden * cout * 9 + 2 * cout)


def architecture_size(config: GlowConfig) -> int:
    """The number of values (parameters and buffers) of a :class:`Glow` built from ``config``,
    computed without building it."""
    total = 0
    c, size = config.channels, config.image_size
    for i in range(config.levels):
        c, size = c * 4, size // 2
        half = c // 2
        out = c if config.coupling == "affine" else half
        actnorm = 2 * c + 1
        invconv = 4 * c * c + 2 * c if config.lu else c * c
        total += config.steps * (actnorm + invconv + _net_size(half, config.hidden, out))
        if i == config.levels - 1:
            total += 2 * c * size * size
        else:
            total += half * c * 9 + 2 * c
            if config.prior_hidden:  # the split prior's network
                total += _net_size(half, config.prior_hidden, c)
            c = half
    if config.dequant_hidden:  # features (3x3, 1x1) and the couplings of the learned dequantiser
        c4, h = 4 * config.channels, config.dequant_hidden
        total += (c4 * h * 9 + h) + (h * h + h) + DEQUANT_STEPS * _net_size(c4 // 2 + h, h, c4)
    return total


def check_architecture(config: GlowConfig) -> None:
    """Refuse (``ValueError``) an architecture too large to build: more than
    :data:`MAX_PARAMETERS` values, :data:`MAX_FLOW_STEPS` flow steps or a latent of more than
    :data:`MAX_LATENT_DIM` values per image."""
    if config.levels * config.steps > MAX_FLOW_STEPS:
        raise ValueError(f"{config.levels} levels x {config.steps} steps is more than {MAX_FLOW_STEPS:,} flow steps")
    if config.dim > MAX_LATENT_DIM:
        raise ValueError(f"images of {config.channels}x{config.image_size}x{config.image_size} are more than {MAX_LATENT_DIM:,} values")
    n = architecture_size(config)
    if n > MAX_PARAMETERS:
        raise ValueError(
            f"this architecture would have {n:,} parameters, more than the {MAX_PARAMETERS:,} allowed "
            f"(check hidden={config.hidden}, steps={config.steps}, levels={config.levels}"
            + "".join(f", {k}={getattr(config, k)}" for k in ("prior_hidden", "dequant_hidden") if getattr(config, k))
            + ")"
        )


def default_device() -> torch.device:
    """CUDA when available, else Apple's MPS when present, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# ----------------------------------------------------------------------------- bundled models
def bundled_models_dir() -> Path:
    """``assets/models`` of a checkout, or of the installed wheel (package ``glow_explorer_assets``)."""
    here = Path(__file__).resolve().parents[2] / "assets" / "models"
    if here.is_dir():
        return here
    try:
        import glow_explorer_assets  # type: ignore[import-not-found]

        return Path(glow_explorer_assets.__file__).resolve().parent / "models"
    except ImportError:  # pragma: no cover - broken install
        return here


def bundled_model_names() -> list[str]:
    root = bundled_models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG_NAME).is_file())


def resolve_model_path(path_or_name: str | os.PathLike | None = None) -> Path:
    """A path as given, or the folder of a bundled model by name (default: the face model)."""
    if path_or_name is None:
        path_or_name = DEFAULT_MODEL
    p = Path(path_or_name).expanduser()
    if p.exists():
        return p
    name = str(path_or_name)
    if "/" not in name and os.sep not in name:
        bundled = bundled_models_dir() / name
        if (bundled / CONFIG_NAME).is_file():
            return bundled
        names = bundled_model_names()
        raise CheckpointError(
            f"no model file or folder named {name!r}, and no bundled model of that name "
            f"(bundled: {', '.join(names) if names else 'none'})"
        )
    raise CheckpointError(f"{p}: no such file or folder")


# ------------------------------------------------------------------------------------ saving
def _config_dict(model: Glow, weights_meta: dict | None) -> dict[str, Any]:
    arch = model.config.to_dict()
    n_bits = arch.pop("n_bits")
    cfg: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": arch,
        "preprocessing": {"n_bits": n_bits, "range": [-0.5, 0.5],
                          "dequantization": "learned (variational)" if model.config.dequant_hidden else "uniform"},
        "latent_dim": model.dim,
        "parameters": model.num_parameters(),
    }
    if weights_meta:
        cfg["weights"] = weights_meta
    if model.direction_info or model.directions:
        cfg["directions"] = {name: dict(model.direction_info.get(name, {})) for name in model.directions}
    if model.sampling_prior is not None:
        cfg["sampling_prior"] = {"level": "top", "kind": "ppca", "rank": model.sampling_prior.rank, "sigma": model.sampling_prior.sigma}
    if model.metadata:
        cfg["metadata"] = model.metadata
    return cfg


def _tensors(model: Glow, dtype: torch.dtype) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.contiguous().clone()
    for name, vec in model.directions.items():
        out[DIRECTION_PREFIX + name] = vec.detach().cpu().to(dtype).reshape(-1).contiguous().clone()
    if model.sampling_prior is not None:
        out[PRIOR_MEAN] = model.sampling_prior.mean.to(dtype).contiguous().clone()
        out[PRIOR_FACTOR] = model.sampling_prior.factor.to(dtype).contiguous().clone()
    return out


def save_model(model: Glow, path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> Path:
    """Save ``model`` (with its directions and metadata) to a directory or a ``.safetensors`` file.

    Each file is written atomically (temporary file, then rename): an interrupted save leaves
    the previous model in place.
    """
    from safetensors.torch import save

    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"weights can be stored as float32, float16 or bfloat16, not {dtype}")
    path = Path(path)
    tensors = _tensors(model, dtype)
    dtype_name = str(dtype).replace("torch.", "")
    if path.suffix == ".safetensors":
        cfg = _config_dict(model, {"dtype": dtype_name})
        data = save(tensors, metadata={"glow_explorer": json.dumps(cfg)})
        atomic_write_bytes(path, data)
        return path
    path.mkdir(parents=True, exist_ok=True)
    data = save(tensors)
    meta = {"file": WEIGHTS_NAME, "dtype": dtype_name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    text = json.dumps(_config_dict(model, meta), indent=2) + "\n"
    # Both files are complete on disk before either replaces its old version (the weights first).
    # A kill between the two renames leaves the new weights beside the old config and the new
    # config complete in its temporary file: load_model then rolls forward to that config.
    with atomic_path(path / CONFIG_NAME) as cfg_tmp:
        cfg_tmp.write_text(text, encoding="utf-8")
        with atomic_path(path / WEIGHTS_NAME) as weights_tmp:
            weights_tmp.write_bytes(data)
    return path


# ----------------------------------------------------------------------------------- loading
def _fail(where: Path, problem: str) -> CheckpointError:
    return CheckpointError(f"{where}: {problem}")


def _parse_config(cfg: Any, where: Path) -> tuple[GlowConfig, dict]:
    if not isinstance(cfg, dict):
        raise _fail(where, "the config is not a JSON object")
    fmt = cfg.get("format")
    if fmt != FORMAT:
        raise _fail(where, f"not a Glow Explorer model (format is {fmt!r}, expected {FORMAT!r})")
    version = cfg.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _fail(where, f"format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise _fail(where, f"format version {version} is newer than this program supports ({FORMAT_VERSION}); upgrade glow-explorer")
    if version < 1:
        raise _fail(where, f"unknown format version {version}")
    arch = cfg.get("architecture")
    pre = cfg.get("preprocessing", {})
    if not isinstance(arch, dict):
        raise _fail(where, "config has no 'architecture' object")
    if not isinstance(pre, dict):
        raise _fail(where, "'preprocessing' must be a JSON object")
    levels = arch.get("levels")
    if isinstance(levels, int) and levels > MAX_LEVELS:
        raise _fail(where, f"bad architecture: levels must be <= {MAX_LEVELS}, got {levels}")
    try:
        config = GlowConfig.from_dict({**arch, "n_bits": pre.get("n_bits", arch.get("n_bits", 8))})
        check_architecture(config)
    except (TypeError, ValueError) as e:
        raise _fail(where, f"bad architecture: {e}") from None
    return config, cfg


def read_config(path_or_name: str | os.PathLike | None = None) -> dict:
    """The JSON config of a model (directory, single file or bundled name), without the weights."""
    path = resolve_model_path(path_or_name)
    if path.is_dir():
        return _read_json(path / CONFIG_NAME)
    return _single_file_config(path)[0]


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise _fail(path, "missing (a model folder needs config.json next to its weights)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _fail(path, f"cannot be read: {e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise _fail(path, f"is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except (ValueError, RecursionError) as e:  # integers too long, nesting too deep
        raise _fail(path, f"is not a usable JSON file ({type(e).__name__}: {str(e)[:100]})") from None


def _read_header(path: Path) -> dict:
    """Parse a safetensors header ourselves (bounded), to report problems precisely."""
    size = path.stat().st_size
    if size < 8:
        raise _fail(path, f"is not a safetensors file (only {size} bytes; truncated?)")
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if n <= 0 or n > min(size - 8, 100 * 1024 * 1024):
            raise _fail(path, f"is not a valid safetensors file (header length {n} does not fit a {size}-byte file; truncated or corrupted)")
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, integers too long, nesting too deep
        raise _fail(path, "is not a valid safetensors file (its header is not JSON; corrupted?)") from None
    if not isinstance(header, dict):
        raise _fail(path, "is not a valid safetensors file (header is not an object)")
    return header


def _single_file_config(path: Path) -> tuple[dict, dict]:
    header = _read_header(path)
    meta = header.get("__metadata__") or {}
    text = meta.get("glow_explorer") if isinstance(meta, dict) else None
    if not isinstance(text, str):
        raise _fail(path, "is a safetensors file without a Glow Explorer config in its metadata")
    try:
        return json.loads(text), header
    except json.JSONDecodeError as e:
        raise _fail(path, f"its embedded config is not valid JSON ({e.msg})") from None
    except (ValueError, RecursionError) as e:
        raise _fail(path, f"its embedded config is not usable JSON ({type(e).__name__})") from None


def _pending_config(folder: Path, weights_name: str, size: int, digest: str) -> tuple[Path, dict] | None:
    """The complete temporary config of an interrupted :func:`save_model` that describes exactly
    these weights (same file, size and SHA-256), if one was left beside them."""
    for p in sorted(folder.glob(f".{CONFIG_NAME}.*")):
        try:
            if not p.is_file() or p.stat().st_size > 16 * 1024 * 1024:
                continue
            raw = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        w = raw.get("weights") if isinstance(raw, dict) else None
        if isinstance(w, dict) and w.get("file", WEIGHTS_NAME) == weights_name and w.get("bytes") == size and w.get("sha256") == digest:
            return p, raw
    return None


def _load_tensors(path: Path, data: bytes) -> dict[str, Tensor]:
    from safetensors.torch import load

    try:
        return load(data)
    except Exception as e:  # safetensors raises its own error types for bad files
        raise _fail(path, f"is not a valid safetensors file ({e}); truncated or corrupted?") from None


def load_model(
    path_or_name: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
) -> Glow:
    """Load a model from a directory, a ``.safetensors`` file or a bundled model's name.

    With no argument, the bundled face model. The model comes back in eval mode, float32, on
    ``device`` (default: :func:`default_device`). Pickle-based files (``.pt``, ``.pth``, ...) are
    refused, never unpickled. Every problem raises :class:`CheckpointError` naming the file.
    """
    path = resolve_model_path(path_or_name)
    if path.is_file() and path.name == CONFIG_NAME:
        path = path.parent
    if path.is_dir():
        cfg_path = path / CONFIG_NAME
        raw_cfg = _read_json(cfg_path)
        config, cfg = _parse_config(raw_cfg, cfg_path)
        wmeta = cfg.get("weights") or {}
        if not isinstance(wmeta, dict):
            raise _fail(cfg_path, "'weights' must be a JSON object")
        wname = wmeta.get("file", WEIGHTS_NAME)
        if not isinstance(wname, str) or not wname or "/" in wname or "\\" in wname or wname.startswith("."):
            raise _fail(cfg_path, f"bad weights file name {wname!r}")
        wpath = path / wname
        if not wpath.is_file():
            raise _fail(wpath, "missing: the model folder has a config but no weights file")
        _read_header(wpath)
        data = wpath.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if wmeta.get("bytes", len(data)) != len(data) or wmeta.get("sha256", digest) != digest:
            pending = _pending_config(path, wname, len(data), digest)
            if pending is not None:  # a save interrupted between its two renames: finish it
                cfg_path, raw_cfg = pending
                config, cfg = _parse_config(raw_cfg, cfg_path)
                wmeta = cfg["weights"]
        if "bytes" in wmeta and wmeta["bytes"] != len(data):
            raise _fail(wpath, f"has {len(data)} bytes but config.json expects {wmeta['bytes']} (truncated or replaced?)")
        if "sha256" in wmeta and digest != wmeta["sha256"]:
            raise _fail(wpath, "checksum does not match config.json (corrupted, or weights and config come from different saves)")
        tensors = _load_tensors(wpath, data)
        where = wpath
    elif path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise _fail(path, "pickle-based checkpoints are refused (they can run arbitrary code); use a Glow Explorer model folder or .safetensors file")
        raw_cfg, _ = _single_file_config(path)
        config, cfg = _parse_config(raw_cfg, path)
        tensors = _load_tensors(path, path.read_bytes())
        where = path
    else:
        raise _fail(path, "not a file or folder")

    # A config can describe a far larger model than its weights file holds: refuse before building it.
    prior_t = {k: tensors.pop(k) for k in (PRIOR_MEAN, PRIOR_FACTOR) if k in tensors}
    file_values = sum(v.numel() for k, v in tensors.items() if not k.startswith(DIRECTION_PREFIX))
    needed = architecture_size(config)
    if needed > 2 * file_values + 1_000_000:
        raise _fail(where, f"weights do not match the config's architecture: it needs {needed:,} values, the file holds {file_values:,}")
    model = Glow(config)
    directions = {k[len(DIRECTION_PREFIX):]: v for k, v in tensors.items() if k.startswith(DIRECTION_PREFIX)}
    weights = {k: v for k, v in tensors.items() if not k.startswith(DIRECTION_PREFIX)}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s) (e.g. {', '.join(missing[:3])})")
        if extra:
            parts.append(f"{len(extra)} unexpected tensor(s) (e.g. {', '.join(extra[:3])})")
        raise _fail(where, "weights do not match the config's architecture: " + "; ".join(parts))
    for k, ref in expected.items():
        v = weights[k]
        if tuple(v.shape) != tuple(ref.shape):
            raise _fail(where, f"tensor {k} has shape {tuple(v.shape)}, the config's architecture needs {tuple(ref.shape)}")
        if ref.is_floating_point() != v.is_floating_point():
            raise _fail(where, f"tensor {k} has dtype {v.dtype}, expected {ref.dtype}")
        v = v.to(ref.dtype)  # (float64 values beyond float32's range become infinite here)
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise _fail(where, f"tensor {k} contains NaN or infinite values")
        weights[k] = v
    model.load_state_dict(weights)
    info = cfg.get("directions") or {}
    if not isinstance(info, dict):
        raise _fail(where, "'directions' must be a JSON object")
    for name, vec in directions.items():
        if not vec.is_floating_point():
            raise _fail(where, f"direction {name!r} has dtype {vec.dtype}, expected floating point values")
        if vec.numel() != model.dim:
            raise _fail(where, f"direction {name!r} has {vec.numel()} values, expected {model.dim}")
        if not torch.isfinite(vec).all():
            raise _fail(where, f"direction {name!r} contains NaN or infinite values")
        entry = info.get(name)
        entry = entry if isinstance(entry, dict) else {}  # (odd but harmless: the direction, without its info)
        try:  # the numbers the sliders and edits use: a bad one would stall the window or give grey images
            check_direction_name(name)
            check_direction_info(name, entry, known=directions.keys())
        except ValueError as e:
            raise _fail(path / "config.json" if path.is_dir() else path, str(e)) from None
        model.directions[name] = vec.float().reshape(-1)
        model.direction_info[name] = dict(entry)
    model.sampling_prior = _sampling_prior(cfg.get("sampling_prior"), prior_t, model, path / "config.json" if path.is_dir() else path)
    meta = cfg.get("metadata") or {}
    model.metadata = meta if isinstance(meta, dict) else {}
    model.source_path = path
    model.eval()
    return model.to(torch.device(device) if device is not None else default_device())


def _sampling_prior(entry: Any, tensors: dict[str, Tensor], model: Glow, where: Path) -> Optional[FittedNoise]:
    """The model's fitted top-level sampling prior from its config entry and two tensors, or None
    when it has none; a half-present or malformed one is refused in one line."""
    if entry is None and not tensors:
        return None
    if not isinstance(entry, dict) or set(tensors) != {PRIOR_MEAN, PRIOR_FACTOR}:
        raise _fail(where, "'sampling_prior' needs its config entry and both tensors (sampling_prior.mean, sampling_prior.factor)")
    mean, factor = tensors[PRIOR_MEAN], tensors[PRIOR_FACTOR]
    top = int(torch.Size(model.latent_shapes[-1]).numel())
    if mean.numel() != top:
        raise _fail(where, f"sampling_prior.mean has {mean.numel()} values, the top level has {top}")
    try:
        return FittedNoise(mean, factor, entry.get("sigma"))
    except ValueError as e:
        raise _fail(where, f"sampling_prior: {e}") from None
