"""What defines a training run (:class:`TrainConfig`, its TOML form and its checks), the model it
starts from (:func:`build_model`), the learning rate schedule, and what a session returns
(:class:`TrainResult`)."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from ..base.limits import MAX_LEVELS
from ..io.checkpoint import check_architecture
from ..model import Glow, GlowConfig
from .ema import check_decay
from .trainstate import TrainingError

__all__ = ["PRECISIONS", "LR_SCHEDULES", "TrainConfig", "TrainResult", "learning_rate", "load_toml_config", "build_model"]

PRECISIONS = ("fp32", "bf16", "fp16")
LR_SCHEDULES = ("constant", "cosine")


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
    # TensorBoard event files in the run folder: None = when the tensorboard package is installed
    tensorboard: Optional[bool] = None

    # which fields may change when a run is resumed (the rest define the run)
    RESUMABLE_CHANGES = (
        "epochs", "max_minutes", "max_steps", "eval_minutes", "eval_steps", "val_images", "eval_batch",
        "samples", "cache_dir", "device", "threads", "max_bad_steps", "out", "data", "precision",
        "lr_schedule", "lr_min", "decay_start", "hflip", "channels_last", "tensorboard",
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
        need(self.tensorboard is None or isinstance(self.tensorboard, bool), f"tensorboard must be true or false, got {self.tensorboard!r}")
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


# parts a trained model grows with --init-from (their outputs start at zero, so the grown model
# computes what it computed): TrainConfig field, what it is, the Glow method that adds it
_GROWABLE = (
    ("prior_hidden", "split-prior networks", "with_prior_networks"),
    ("dequant_hidden", "a learned dequantiser", "with_dequantizer"),
)


def build_model(cfg: TrainConfig, channels: int, device: torch.device, start: Optional[Glow]) -> Glow:
    """The model a run starts from: ``start`` (a trained model, grown as ``cfg`` asks) or a new one."""
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
        model.sampling_prior = None  # nor would a sampling prior fitted to their encodings
    else:
        torch.manual_seed(cfg.seed)
        gc = GlowConfig(
            image_size=int(cfg.image_size), channels=channels, levels=cfg.levels, steps=cfg.steps, hidden=cfg.hidden,
            coupling=cfg.coupling, lu=cfg.lu, n_bits=cfg.n_bits, prior_hidden=cfg.prior_hidden or 0,
            dequant_hidden=cfg.dequant_hidden or 0,
        )
        model = Glow(gc)
    return model.to(device)
