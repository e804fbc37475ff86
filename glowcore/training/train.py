"""Training Glow: resumable, with validation, sample grids, checkpoints, and DDP under torchrun.

:func:`train` runs one training session described by a :class:`TrainConfig` into a run folder::

    RUN_DIR/run.json          the full config of the run (architecture, data, optimisation)
    RUN_DIR/metrics.jsonl     one JSON line per evaluation
    RUN_DIR/samples/          sample grids (rows: T = 0, 0.5, 0.7, 1.0; fixed seeds)
    RUN_DIR/latest/           model folder (glowcore.load_model works) + trainer_state.{json,safetensors}
    RUN_DIR/best/             model folder of the best validation bits/dim so far

Everything is safetensors + JSON; nothing is pickled. ``resume=True`` continues a run exactly:
the same data order (one permutation per epoch from ``seed`` and the epoch), the same
dequantisation noise (a generator seeded from ``seed``, the step and the rank), the optimizer's
moments, the step count, the LR schedule and the RNG states.

Under ``torchrun --nproc_per_node=N`` the same call trains with DistributedDataParallel (NCCL on
GPUs, gloo on CPUs). ``batch`` is the global batch: each rank takes its share of every global
batch, so the data order and the schedule do not depend on the number of processes. Only rank 0
writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import Tensor, nn

from ..io.checkpoint import MAX_LEVELS, check_architecture, load_model, save_model
from ..data.datasets import ImageDataset, dataset_channels, default_image_size, load_dataset
from .ema import EMA, check_decay
from ..io.fileio import atomic_write_text
from ..ops.evaluate import evaluate_bits_per_dim
from ..io.grid import save_grid
from ..model import Glow, GlowConfig
from ..base.progress import CancelToken, ProgressFn
from .trainstate import (  # noqa: F401  (the state helpers are part of this module's interface)
    STATE_JSON, TrainingError, _iso_now, _recover_dir, _replace_dir, _save_checkpoint, _set_rng_state,
    _unflatten_optimizer, load_trainer_state,
)

PRECISIONS = ("fp32", "bf16", "fp16")
LR_SCHEDULES = ("constant", "cosine")

__all__ = [
    "PRECISIONS",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "train",
    "load_toml_config",
    "load_trainer_state",
    "RUN_CONFIG_NAME",
    "SAMPLE_TEMPERATURES",
]

RUN_CONFIG_NAME = "run.json"
SAMPLE_TEMPERATURES = (0.0, 0.5, 0.7, 1.0)
SAMPLE_SEED = 0
VAL_NOISE_SEED = 12345


@dataclass
class TrainConfig:
    """Everything that defines a training run. Field names are the TOML keys and CLI options."""

    data: str = ""
    out: str = ""
    # architecture (ignored with init_from: the model brings its own)
    image_size: Optional[int] = None
    levels: int = 4
    steps: int = 8
    hidden: int = 128
    coupling: str = "affine"
    lu: bool = True
    n_bits: int = 5
    # width of the split priors' networks (0: none); with init_from, a model without them grows them
    prior_hidden: Optional[int] = None
    # width of a learned dequantisation noise distribution (0: uniform noise); with init_from, a
    # model without one grows one (training and bits/dim only: decoding never uses it)
    dequant_hidden: Optional[int] = None
    init_from: Optional[str] = None
    # optimisation
    batch: int = 32
    lr: float = 1e-3
    warmup: int = 500
    # "constant" after warmup, or "cosine": from decay_start (default: the end of warmup) down to
    # lr_min at max_steps (which cosine needs); may change on resume, e.g. to anneal a long run
    lr_schedule: str = "constant"
    lr_min: float = 0.0
    decay_start: Optional[int] = None
    grad_clip: float = 50.0
    # Polyak averaging of the weights (e.g. 0.999; None: off): evaluated, saved and shipped
    ema: Optional[float] = None
    # data augmentation: each training image mirrored left-right with probability 1/2
    hflip: bool = False
    epochs: Optional[float] = None
    max_minutes: Optional[float] = None
    max_steps: Optional[int] = None
    seed: int = 0
    init_batch: int = 512
    max_bad_steps: int = 50
    # evaluation
    eval_minutes: float = 5.0
    eval_steps: Optional[int] = None
    val_images: int = 1000
    eval_batch: int = 100
    samples: int = 8
    # data and machine
    labels: Optional[str] = None
    cache_dir: Optional[str] = None
    device: Optional[str] = None
    threads: Optional[int] = None
    # "bf16"/"fp16": the coupling and prior networks run under autocast; flows and log-dets stay fp32
    precision: str = "fp32"
    # channels-last memory layout for the networks' weights (faster convolutions on some GPUs)
    channels_last: bool = False

    # which fields may change when a run is resumed (the rest define the run)
    RESUMABLE_CHANGES = (
        "epochs", "max_minutes", "max_steps", "eval_minutes", "eval_steps", "val_images", "eval_batch",
        "samples", "cache_dir", "device", "threads", "max_bad_steps", "out", "data", "precision",
        "lr_schedule", "lr_min", "decay_start", "hflip", "channels_last",
    )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "TrainConfig":
        known = set(cls.field_names())
        norm = {str(k).replace("-", "_"): v for k, v in d.items()}
        unknown = sorted(set(norm) - known)
        if unknown:
            raise TrainingError(f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        cfg = cls(**norm)
        return cfg

    def validate(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise TrainingError(msg)

        need(bool(self.data), "no data set: give --data SPEC (celeba:PATH, folder:PATH or fashion-mnist[:PATH])")
        need(bool(self.out), "no run folder: give --out RUN_DIR")
        for name in ("batch", "init_batch", "val_images", "eval_batch", "samples", "max_bad_steps"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 1, f"{name.replace('_', '-')} must be a positive integer, got {v!r}")
        need(isinstance(self.warmup, int) and self.warmup >= 0, f"warmup must be an integer >= 0, got {self.warmup!r}")
        need(isinstance(self.lr, (int, float)) and 0 < self.lr < 1, f"lr must be in (0, 1), got {self.lr!r}")
        need(isinstance(self.grad_clip, (int, float)) and self.grad_clip >= 0, f"grad-clip must be >= 0 (0 turns clipping off), got {self.grad_clip!r}")
        for name in ("epochs", "max_minutes"):
            v = getattr(self, name)
            need(v is None or (isinstance(v, (int, float)) and v > 0), f"{name.replace('_', '-')} must be > 0, got {v!r}")
        for name in ("max_steps", "eval_steps", "threads"):
            v = getattr(self, name)
            need(v is None or (isinstance(v, int) and v >= 1), f"{name.replace('_', '-')} must be a positive integer, got {v!r}")
        need(isinstance(self.eval_minutes, (int, float)) and self.eval_minutes > 0, f"eval-minutes must be > 0, got {self.eval_minutes!r}")
        need(self.lr_schedule in LR_SCHEDULES, f"lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        need(isinstance(self.lr_min, (int, float)) and 0 <= self.lr_min <= self.lr, f"lr-min must be in [0, lr={self.lr}], got {self.lr_min!r}")
        need(self.decay_start is None or (isinstance(self.decay_start, int) and self.decay_start >= 0),
             f"decay-start must be an integer >= 0, got {self.decay_start!r}")
        if self.lr_schedule == "cosine":
            need(self.max_steps is not None, "lr-schedule cosine decays to lr-min at --max-steps: give --max-steps")
            start = self.warmup if self.decay_start is None else self.decay_start
            need(start < self.max_steps, f"decay-start ({start}) must be below max-steps ({self.max_steps})")  # type: ignore[operator]
        for name, zero in (("prior_hidden", "no prior networks"), ("dequant_hidden", "uniform dequantisation noise")):
            v = getattr(self, name)
            need(v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
                 f"{name.replace('_', '-')} must be an integer >= 0 (0: {zero}), got {v!r}")
        for name in ("hflip", "channels_last"):
            need(isinstance(getattr(self, name), bool), f"{name.replace('_', '-')} must be true or false, got {getattr(self, name)!r}")
        if self.ema is not None:
            try:
                check_decay(self.ema)
            except ValueError as e:
                raise TrainingError(str(e)) from None
        need(self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        # (GlowConfig checks the architecture; bound levels first: it computes 2**levels)
        need(not isinstance(self.levels, int) or self.levels <= MAX_LEVELS, f"levels must be <= {MAX_LEVELS}, got {self.levels!r}")


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The learning rate at (0-based) ``step``: linear warmup, then constant or cosine decay."""
    lr = float(cfg.lr)
    if cfg.lr_schedule == "cosine" and cfg.max_steps is not None:
        start = cfg.warmup if cfg.decay_start is None else cfg.decay_start
        if step >= start:
            frac = min(1.0, (step - start) / max(cfg.max_steps - start, 1))
            lr = cfg.lr_min + (lr - cfg.lr_min) * 0.5 * (1.0 + math.cos(math.pi * frac))
    if cfg.warmup > 0:
        lr *= min(1.0, (step + 1) / cfg.warmup)
    return lr


@dataclass
class TrainResult:
    """What a training session did."""

    run_dir: Path
    step: int
    epoch: int
    images_seen: int
    val_bpd: Optional[float]
    best_val_bpd: Optional[float]
    train_bpd: Optional[float]
    interrupted: bool
    skipped_steps: int
    metrics: list[dict] = field(default_factory=list)
    model: Optional[Glow] = field(default=None, repr=False)


def load_toml_config(path: str | os.PathLike) -> dict:
    """Read a TOML run config (flat keys, or tables whose keys are merged) into a dict."""
    import tomllib

    p = Path(path)
    try:
        with open(p, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {p} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise TrainingError(f"{p}: not valid TOML ({e})") from None
    flat: dict = {}
    for k, v in raw.items():
        if isinstance(v, dict):
            flat.update(v)
        else:
            flat[k] = v
    known = set(TrainConfig.field_names())
    unknown = sorted({str(k).replace("-", "_") for k in flat} - known)
    if unknown:
        raise TrainingError(f"{p}: unknown option(s) {', '.join(unknown)}")
    return {str(k).replace("-", "_"): v for k, v in flat.items()}


# ------------------------------------------------------------------------------ distributed
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    enabled: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_pref: Optional[str]) -> tuple[_Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        dev = torch.device(device_pref) if device_pref else _default_device()
        return _Dist(), dev
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device_pref is None or device_pref.startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(rank, world, local, True), dev


def _default_device() -> torch.device:
    from ..io.checkpoint import default_device

    return default_device()


def _barrier(d: _Dist) -> None:
    if d.enabled:
        import torch.distributed as dist

        dist.barrier()


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


# ------------------------------------------------------------------------------ helpers
class _LossModule(nn.Module):
    """Wraps a Glow so that DDP sees the loss computation as ``forward``."""

    def __init__(self, model: Glow):
        super().__init__()
        self.model = model
        self.generator: Optional[torch.Generator] = None

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return self.model.bits_per_dim(x, generator=self.generator)


def _noise_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 0x9E3779B97F4A7C15 + step * 0xBF58476D1CE4E5B9 + rank * 0x94D049BB133111EB + 0x2545F491) % (2**63 - 1)


def _flip_mask(seed: int, step: int, rank: int, n: int) -> np.ndarray:
    """Which of a step's ``n`` images are mirrored (--hflip): a function of the seed, the step and
    the rank, so a resumed run flips what the uninterrupted one would have."""
    return np.random.default_rng([seed, step, rank, 0xF11B]).random(n) < 0.5


def _epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0x61C8]).permutation(n)


def _as_batch(images: np.ndarray | Tensor, idx: np.ndarray | Tensor, device: torch.device) -> Tensor:
    """uint8 (B, C, H, W) tensor on ``device`` for the chosen rows of a (N, H, W, C) array."""
    if isinstance(images, Tensor):
        return images.index_select(0, idx).permute(0, 3, 1, 2)
    rows = np.sort(np.asarray(idx)) if isinstance(idx, np.ndarray) else idx
    t = torch.from_numpy(np.ascontiguousarray(images[rows])).permute(0, 3, 1, 2)
    if device.type == "cuda":
        t = t.pin_memory().to(device, non_blocking=True)
    return t


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


# ------------------------------------------------------------------------------ training
# parts a trained model grows with --init-from (their outputs start at zero, so the grown model
# computes what it computed): TrainConfig field, what it is, the Glow method that adds it
_GROWABLE = (
    ("prior_hidden", "split-prior networks", "with_prior_networks"),
    ("dequant_hidden", "a learned dequantiser", "with_dequantizer"),
)


def _build_model(cfg: TrainConfig, channels: int, device: torch.device, start: Optional[Glow]) -> Glow:
    if start is not None:
        model = start
        for key, what, grow in _GROWABLE:
            want, have = getattr(cfg, key), getattr(model.config, key)
            if want is None or want == have:
                continue
            option = "--" + key.replace("_", "-")
            if have:
                raise TrainingError(
                    f"{cfg.init_from} has {what} {have} wide; {option} {want} cannot change its width "
                    f"(only a model without one can grow one)"
                )
            check_architecture(dataclasses.replace(model.config, **{key: want}))
            model = getattr(model, grow)(want)
        model.directions.clear()  # directions of other weights would no longer fit
        model.direction_info.clear()
    else:
        torch.manual_seed(cfg.seed)
        gc = GlowConfig(
            image_size=int(cfg.image_size), channels=channels, levels=cfg.levels, steps=cfg.steps, hidden=cfg.hidden,
            coupling=cfg.coupling, lu=cfg.lu, n_bits=cfg.n_bits, prior_hidden=cfg.prior_hidden or 0,
            dequant_hidden=cfg.dequant_hidden or 0,
        )
        model = Glow(gc)
    return model.to(device)


def _actnorm_initialized(model: Glow) -> bool:
    from ..nn.actnorm import ActNorm

    return all(bool(m.initialized) for m in model.modules() if isinstance(m, ActNorm))


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[CancelToken] = None,
    log: Callable[[str], None] = print,
    data_progress: Optional[ProgressFn] = None,
    handle_signals: bool = False,
) -> TrainResult:
    """Run (or resume) a training session; returns when a stop condition is met or on cancel.

    Stop conditions: ``max_steps`` (total optimizer steps), ``epochs`` (total), ``max_minutes``
    (this session), ``cancel`` (also set by SIGINT/SIGTERM when ``handle_signals``). The run is
    evaluated and checkpointed every ``eval_minutes`` (and ``eval_steps``) and at the end.
    """
    run_dir = Path(cfg.out).expanduser()
    run_cfg_path = run_dir / RUN_CONFIG_NAME
    state_meta: Optional[dict] = None
    state_tensors: dict[str, Tensor] = {}
    if run_dir.is_dir() and int(os.environ.get("RANK", "0")) == 0:  # (one process under torchrun)
        for name in ("latest", "best"):
            _recover_dir(run_dir / name)
    if resume and run_cfg_path.is_file() and _latest_dir(run_dir) is None and not (run_dir / "latest").exists():
        # killed before its first checkpoint: nothing to continue, nothing to lose
        log(f"{run_dir} has no checkpoint yet (the run stopped before its first one): starting it from the beginning")
        resume = False
    if resume:
        latest = _latest_dir(run_dir)
        if not run_cfg_path.is_file() or latest is None:
            raise TrainingError(f"{run_dir} has no run to resume (needs {RUN_CONFIG_NAME} and latest/{STATE_JSON}); start one without --resume")
        saved = TrainConfig.from_dict(json.loads(run_cfg_path.read_text(encoding="utf-8"))["config"], str(run_cfg_path))
        if cfg.image_size is None:  # left unset: the run's resolved value
            cfg.image_size = saved.image_size
        changed = [k for k in TrainConfig.field_names() if k not in TrainConfig.RESUMABLE_CHANGES and getattr(cfg, k) != getattr(saved, k)]
        if changed:
            raise TrainingError(
                f"cannot change {', '.join('--' + k.replace('_', '-') for k in changed)} when resuming {run_dir} "
                f"(the run has {', '.join(f'{k}={getattr(saved, k)!r}' for k in changed)}); start a new run, e.g. with --init-from {run_dir / 'latest'}"
            )
        state_meta, state_tensors = load_trainer_state(latest)
    elif _latest_dir(run_dir) is not None or (run_dir / "latest").exists():
        raise TrainingError(f"{run_dir} already holds a run; add --resume to continue it, or choose another --out")
    cfg.validate()
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, run_dir, state_meta, state_tensors, progress, cancel, log, data_progress, handle_signals)
    finally:
        torch.set_num_threads(threads_before)


def _train(cfg: TrainConfig, run_dir: Path, state_meta: Optional[dict], state_tensors: dict[str, Tensor],
           progress: Optional[ProgressFn], cancel: Optional[CancelToken], log: Callable[[str], None],
           data_progress: Optional[ProgressFn], handle_signals: bool) -> TrainResult:
    run_cfg_path = run_dir / RUN_CONFIG_NAME

    dist_info, device = _init_distributed(cfg.device)
    is_main = dist_info.main
    say = log if is_main else (lambda _m: None)

    # ---- data (rank 0 builds the caches first; the others then read them)
    # the starting weights: the run's own checkpoint when resuming, else --init-from's model
    start_path = _latest_dir(run_dir) if state_meta is not None else cfg.init_from
    start_model = load_model(start_path, device="cpu") if start_path else None
    if start_model is not None:
        image_size, channels = start_model.config.image_size, start_model.config.channels
        if state_meta is None:
            say(f"initialised from {cfg.init_from}")
    else:
        image_size = cfg.image_size or default_image_size(cfg.data)
        channels = dataset_channels(cfg.data)
        cfg.image_size = image_size
        check_architecture(GlowConfig(image_size=image_size, channels=channels, levels=cfg.levels, steps=cfg.steps, hidden=cfg.hidden,
                                      coupling=cfg.coupling, lu=cfg.lu, n_bits=cfg.n_bits,
                                      prior_hidden=cfg.prior_hidden or 0, dequant_hidden=cfg.dequant_hidden or 0))  # validates before any work
    datasets: dict[str, ImageDataset] = {}
    for turn in (0, 1):
        if (turn == 0) == is_main:
            datasets["train"] = load_dataset(cfg.data, image_size, "train", cache_dir=cfg.cache_dir, labels_csv=cfg.labels,
                                             progress=data_progress if is_main else None, cancel=cancel)
            datasets["val"] = load_dataset(cfg.data, image_size, "val", cache_dir=cfg.cache_dir, labels_csv=cfg.labels,
                                           progress=data_progress if is_main else None, cancel=cancel)
        if turn == 0:
            _barrier(dist_info)
    train_ds, val_ds = datasets["train"], datasets["val"]
    say(f"data: {train_ds.describe()}; {val_ds.describe()}")
    n_train = len(train_ds)
    if cfg.batch % dist_info.world:
        raise TrainingError(f"batch {cfg.batch} must be a multiple of the number of processes ({dist_info.world})")
    if n_train < cfg.batch:
        raise TrainingError(f"the training split has {n_train} images, fewer than one batch ({cfg.batch}); lower --batch")
    steps_per_epoch = n_train // cfg.batch
    local_batch = cfg.batch // dist_info.world

    # ---- model
    model = _build_model(cfg, channels, device, start_model)
    for ds, what in ((train_ds, "training"), (val_ds, "validation")):
        ds.check_fits(model.config.image_size, model.config.channels, what)
    say(f"model: {model.describe()}")

    # ---- place the training images (the whole uint8 set on the GPU when it fits easily)
    train_images: np.ndarray | Tensor = train_ds.images
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if train_ds.images.nbytes < 0.2 * free:
            train_images = torch.from_numpy(np.ascontiguousarray(train_ds.images)).to(device)

    # ---- run folder and config
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "samples").mkdir(exist_ok=True)
        import glowcore

        record = {
            "config": cfg.to_dict(),
            "architecture": model.config.to_dict(),
            "data": {"train": train_ds.describe(), "val": val_ds.describe(), "train_images": n_train,
                     "val_images": len(val_ds), "label_names": train_ds.label_names},
            "steps_per_epoch": steps_per_epoch,
            "world_size": dist_info.world,
            "device": str(device),
            "versions": {"glow_explorer": glowcore.__version__, "torch": torch.__version__},
            "started" if state_meta is None else "resumed": _iso_now(),
        }
        if state_meta is not None:
            _trim_metrics(run_dir / "metrics.jsonl", int(state_meta["step"]))
        if state_meta is not None and run_cfg_path.is_file():
            old = json.loads(run_cfg_path.read_text(encoding="utf-8"))
            record["started"] = old.get("started")
            record["sessions"] = old.get("sessions", 1) + 1
        atomic_write_text(run_cfg_path, json.dumps(record, indent=2) + "\n")

    # ---- ActNorm initialisation from one large batch (before the optimizer and before DDP)
    if state_meta is None and not _actnorm_initialized(model):
        n_init = min(cfg.init_batch, n_train)
        idx = np.random.default_rng([cfg.seed, 0x1217]).permutation(n_train)[:n_init]
        x0 = _as_batch(train_ds.images, np.sort(idx), device)
        with torch.no_grad():
            model.initialize(x0)
        del x0
        say(f"ActNorm initialised from {n_init} images")

    model.train()
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.precision == "fp32":
        autocast: Any = contextlib.nullcontext()
    else:
        autocast = torch.autocast(device.type, dtype=torch.bfloat16 if cfg.precision == "bf16" else torch.float16)
    params = [p for p in model.parameters() if p.requires_grad]
    fused = True
    try:
        opt = torch.optim.Adam(params, lr=cfg.lr, fused=True)
    except (RuntimeError, TypeError):  # pragma: no cover - old torch or unsupported device
        fused = False
        opt = torch.optim.Adam(params, lr=cfg.lr)

    # ---- restore the trainer state
    step, epoch, batch_in_epoch, images_seen, elapsed_before = 0, 0, 0, 0, 0.0
    best_val: Optional[float] = None
    skipped_total = 0
    if state_meta is not None:
        if state_meta.get("train_images") != n_train:
            raise TrainingError(
                f"the training data changed since the run started ({state_meta.get('train_images')} images then, {n_train} now); "
                f"the data order cannot continue exactly; start a new run with --init-from {run_dir / 'latest'}"
            )
        opt.load_state_dict(_unflatten_optimizer(state_meta["optimizer"], state_tensors))
        for p in params:  # the moments in the parameters' memory layout (channels-last, say)
            st = opt.state.get(p, {})
            for k, v in st.items():
                if isinstance(v, Tensor) and v.shape == p.shape:
                    st[k] = torch.empty_like(p).copy_(v)
        step, epoch, batch_in_epoch = state_meta["step"], state_meta["epoch"], state_meta["batch_in_epoch"]
        images_seen, elapsed_before = state_meta["images_seen"], state_meta["elapsed_s"]
        best_val, skipped_total = state_meta.get("best_val_bpd"), state_meta.get("skipped_steps", 0)
        _set_rng_state(state_meta["rng"], state_tensors)
        say(f"resumed {run_dir} at step {step} (epoch {epoch}, batch {batch_in_epoch}/{steps_per_epoch})")
    else:
        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        torch.manual_seed(cfg.seed)

    # ---- Polyak averaging: the checkpoint's model files hold the average, its state the live weights
    ema: Optional[EMA] = None
    if cfg.ema is not None:
        ema = EMA(model, cfg.ema)
        if state_meta is not None:
            if "ema_updates" not in state_meta:
                raise TrainingError(f"{run_dir / 'latest'} was saved without weight averaging; cannot resume it with --ema")
            live = {k[len("live."):]: v for k, v in state_tensors.items() if k.startswith("live.")}
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if name in live:
                        p.copy_(live[name].to(p.device, p.dtype))
            ema.updates = int(state_meta["ema_updates"])

    net: nn.Module = _LossModule(model)
    if dist_info.enabled:
        import warnings

        from torch.nn.parallel import DistributedDataParallel as DDP

        # oneDNN returns 1x1-conv weight grads in another memory layout on CPU; harmless.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")

        import inspect

        # Buffers (ActNorm flags, LU permutations) are constant after initialisation: sync them
        # once at construction (from rank 0), not at every forward.
        params_ok = inspect.signature(DDP.__init__).parameters
        sync_kw = {"forward_sync_buffers": False} if "forward_sync_buffers" in params_ok else {"broadcast_buffers": False}
        net = DDP(net, device_ids=[device.index] if device.type == "cuda" else None, **sync_kw)
    loss_module: _LossModule = net.module if dist_info.enabled else net  # type: ignore[assignment]

    # ---- stop conditions
    total_steps: Optional[int] = None
    if cfg.max_steps is not None:
        total_steps = cfg.max_steps
    if cfg.epochs is not None:
        by_epochs = int(math.ceil(cfg.epochs * steps_per_epoch))
        total_steps = by_epochs if total_steps is None else min(total_steps, by_epochs)
    if total_steps is None and cfg.max_minutes is None:
        say("no --epochs, --max-steps or --max-minutes: training until interrupted (Ctrl-C saves and exits)")

    # ---- signals
    cancel = cancel or CancelToken()
    old_handlers: dict = {}
    if handle_signals and threading.current_thread() is threading.main_thread():
        def on_signal(signum, _frame):
            if cancel.cancelled:
                return
            cancel.cancel()
            print(f"\n{signal.Signals(signum).name}: finishing the current step, saving and exiting...", file=sys.stderr)

        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, on_signal)

    gen = torch.Generator(device=device)
    loss_module.generator = gen
    dev_zero = torch.zeros((), device=device)
    loss_sum, loss_count = dev_zero.clone(), dev_zero.clone()
    bad_total, bad_run = dev_zero.clone(), dev_zero.clone()
    sync_every_step = device.type == "cpu"
    start_step = step
    session_start = time.monotonic()
    last_eval_time = session_start
    last_eval_step, last_eval_images = step, images_seen
    last_report = 0.0
    metrics: list[dict] = []
    last_val: Optional[float] = None
    last_train: Optional[float] = None
    interrupted = False
    perm: Optional[Any] = None
    perm_epoch = -1
    grad_clip = float(cfg.grad_clip) if cfg.grad_clip > 0 else float("inf")
    val_subset = np.sort(np.random.default_rng([cfg.seed, 0x7A1]).permutation(len(val_ds))[: min(cfg.val_images, len(val_ds))])
    known_bad = skipped_total

    def evaluate_and_save(final: bool) -> None:
        nonlocal loss_sum, loss_count, last_eval_time, last_eval_step, last_eval_images
        now = time.monotonic()
        n_done = loss_count.item()
        train_bpd = (loss_sum.item() / n_done) if n_done else None
        ips = (images_seen - last_eval_images) / max(now - last_eval_time, 1e-9)
        live: dict[str, Tensor] = {}
        live_bpd: Optional[float] = None
        if ema is not None:
            live = {"live." + n: p.detach().cpu().contiguous().clone() for n, p in model.named_parameters() if p.requires_grad}
            if is_main:  # the live weights' figure beside the average's, to see what averaging gives
                live_bpd = _val_bpd().bits_per_dim
        with (ema.swapped(model) if ema is not None else contextlib.nullcontext()):
            if is_main:
                _evaluate_and_save_main(now, train_bpd, ips, live, live_bpd)
        _barrier(dist_info)
        loss_sum, loss_count = dev_zero.clone(), dev_zero.clone()
        last_eval_time, last_eval_step, last_eval_images = time.monotonic(), step, images_seen

    def _val_bpd():
        """Validation bits/dim of the model's current weights, with the fixed noise (with a learned
        dequantiser, also the bound under uniform noise, comparable with runs without one)."""
        model.eval()
        vgen = torch.Generator(device=device)
        vgen.manual_seed(VAL_NOISE_SEED)
        ev = evaluate_bits_per_dim(model, val_ds.images, val_subset, batch_size=cfg.eval_batch, generator=vgen)
        model.train()
        return ev

    def _evaluate_and_save_main(now: float, train_bpd: Optional[float], ips: float, live: dict[str, Tensor],
                                live_bpd: Optional[float]) -> None:
        nonlocal best_val, last_val, last_train
        ev = _val_bpd()
        model.eval()
        with torch.inference_mode():
            grid = torch.cat([model.sample(cfg.samples, t, seed=SAMPLE_SEED) for t in SAMPLE_TEMPERATURES])
        val_bpd = ev.bits_per_dim
        if not math.isfinite(val_bpd):
            say(f"step {step}: validation bits/dim is not finite; this checkpoint cannot become 'best'")
        model.train()
        save_grid(grid, run_dir / "samples" / f"step_{step:07d}.png", ncol=cfg.samples)
        save_grid(grid, run_dir / "samples" / "latest.png", ncol=cfg.samples)
        elapsed = elapsed_before + (now - session_start)
        line = {
            "step": step, "epoch": round(step / steps_per_epoch, 4), "images": images_seen,
            "train_bpd": None if train_bpd is None else round(train_bpd, 5),
            "val_bpd": round(val_bpd, 5) if math.isfinite(val_bpd) else None,
            **({} if ev.uniform_noise is None else {"val_bpd_uniform_noise": round(ev.uniform_noise, 5)}),
            **({} if live_bpd is None else {"val_bpd_live": round(live_bpd, 5)}),
            "images_per_s": round(ips, 2), "lr": learning_rate(cfg, max(step - 1, 0)), "elapsed_s": round(elapsed, 1),
            "skipped_steps": int(skipped_total), "time": _iso_now(),
        }
        with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        metrics.append(line)
        last_val, last_train = val_bpd, train_bpd
        improved = math.isfinite(val_bpd) and (best_val is None or val_bpd < best_val)
        if improved:
            best_val = val_bpd
        model.metadata = {
            "metrics": {"val_bpd": val_bpd if math.isfinite(val_bpd) else None, "train_bpd": train_bpd, "best_val_bpd": best_val},
            "training": {
                "data": cfg.data, "step": step, "epoch": step / steps_per_epoch, "images_seen": images_seen,
                "elapsed_s": round(elapsed, 1), "run_dir": str(run_dir.resolve()), "init_from": cfg.init_from,
                "config": cfg.to_dict(), "label_names": train_ds.label_names, "saved": _iso_now(),
            },
        }
        _save_checkpoint(run_dir / "latest", model, opt, fused, {
            "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "images_seen": images_seen,
            "elapsed_s": elapsed, "best_val_bpd": best_val, "skipped_steps": int(skipped_total),
            "train_images": n_train, "steps_per_epoch": steps_per_epoch, "config": cfg.to_dict(),
            **({} if ema is None else {"ema_updates": ema.updates}),
        }, extra=live)
        if improved:
            tmp = run_dir / ".best.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            save_model(model, tmp)
            _replace_dir(tmp, run_dir / "best")
        say(
            f"step {step} epoch {step / steps_per_epoch:.2f}: train {train_bpd if train_bpd is None else f'{train_bpd:.4f}'} "
            f"val {val_bpd:.4f} bits/dim{' (best)' if improved else ''}"
            + ("" if ev.uniform_noise is None else f" ({ev.uniform_noise:.4f} under uniform noise)")
            + f", {ips:.1f} images/s, lr {line['lr']:.2e}"
            + ("" if live_bpd is None else f" (averaged weights; live weights {live_bpd:.4f})")
        )

    def agreed(flags: list[bool]) -> list[bool]:
        if not dist_info.enabled:
            return flags
        import torch.distributed as dist

        t = torch.tensor([float(f) for f in flags], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    try:
        while True:
            # -- decide (stop / evaluate); time-based decisions are agreed among ranks every few steps
            if total_steps is not None and step >= total_steps:
                break
            now = time.monotonic()
            check_now = not dist_info.enabled or (step - start_step) % 20 == 0
            if check_now:
                want_stop = cancel.cancelled or (cfg.max_minutes is not None and now - session_start >= cfg.max_minutes * 60)
                want_eval = now - last_eval_time >= cfg.eval_minutes * 60 or (
                    cfg.eval_steps is not None and step - last_eval_step >= cfg.eval_steps)
                want_stop, want_eval = agreed([want_stop, want_eval])
                if want_stop:
                    interrupted = cancel.cancelled
                    break
                if want_eval and step > last_eval_step:
                    evaluate_and_save(final=False)

            # -- the batch
            if perm_epoch != epoch:
                p = _epoch_permutation(cfg.seed, epoch, n_train)
                perm = torch.from_numpy(p).to(device) if isinstance(train_images, Tensor) else p
                perm_epoch = epoch
            lo = batch_in_epoch * cfg.batch + dist_info.rank * local_batch
            x = _as_batch(train_images, perm[lo : lo + local_batch], device)
            if cfg.hflip:
                flip = torch.from_numpy(_flip_mask(cfg.seed, step, dist_info.rank, x.shape[0])).to(device)
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            gen.manual_seed(_noise_seed(cfg.seed, step, dist_info.rank))
            lr = learning_rate(cfg, step)
            for g in opt.param_groups:
                g["lr"] = lr

            # -- the step
            with autocast:
                bpd = net(x)
            loss = bpd.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
            finite = torch.isfinite(norm) & torch.isfinite(loss.detach())
            bad = (~finite).to(dev_zero.dtype)
            if fused:
                opt.found_inf = bad  # fused Adam skips the update (and its step count) on device
                opt.step()
            elif bool(finite):
                opt.step()
            if ema is not None:
                ema.update(model)
            loss_sum += torch.where(finite, loss.detach(), dev_zero)
            loss_count += finite.to(dev_zero.dtype)
            bad_total += bad
            bad_run = (bad_run + 1) * bad

            step += 1
            images_seen += cfg.batch
            batch_in_epoch += 1
            if batch_in_epoch >= steps_per_epoch:
                epoch, batch_in_epoch = epoch + 1, 0

            # -- report (the only host syncs: on CPU every step, on GPU a few times a second)
            now = time.monotonic()
            if sync_every_step or now - last_report >= 0.5 or (total_steps is not None and step >= total_steps):
                last_report = now
                run_len, skipped_total = int(bad_run.item()), int(bad_total.item())
                if skipped_total > known_bad:
                    say(f"step {step}: skipped {skipped_total - known_bad} step(s) with NaN/Inf loss or gradients ({skipped_total} in total)")
                    known_bad = skipped_total
                if run_len >= cfg.max_bad_steps:
                    raise TrainingError(
                        f"training diverged: {run_len} steps in a row had NaN/Inf loss or gradients (at step {step}); "
                        f"the last checkpoint is {run_dir / 'latest'}; try a lower --lr, a longer --warmup or --grad-clip"
                    )
                if progress is not None and is_main:
                    cnt = loss_count.item()
                    cur = loss_sum.item() / cnt if cnt else float("nan")
                    dt = now - session_start
                    ips = (step - start_step) * cfg.batch / dt if dt > 0 else 0.0
                    done = step - start_step
                    if total_steps is not None:
                        total = total_steps - start_step
                    elif cfg.max_minutes is not None and dt > 0:
                        total = max(done, int(done * cfg.max_minutes * 60 / dt))
                    else:
                        total = 0
                    eta = ""
                    if total_steps is not None and done:
                        eta = f" ETA {_fmt_time((total_steps - step) * dt / done)}"
                    elif cfg.max_minutes is not None:
                        eta = f" ETA {_fmt_time(cfg.max_minutes * 60 - dt)}"
                    progress(done, total, f"step {step} epoch {step / steps_per_epoch:.2f} bpd {cur:.4f} {ips:.1f} img/s{eta}")
        if step > start_step or state_meta is None:
            evaluate_and_save(final=True)
        else:  # resumed at its stop condition (or stopped at once): the checkpoint is already current
            say(f"{run_dir} is already at step {step}; nothing to train (raise --max-steps or --epochs to continue)")
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
    if is_main and interrupted:
        say(f"stopped at step {step}; saved {run_dir / 'latest'}; continue with: glow train --resume --out {run_dir}")
    return TrainResult(run_dir, step, epoch, images_seen, last_val, best_val, last_train, interrupted, int(skipped_total), metrics, model)
