"""Training Glow: resumable, with validation, sample grids, checkpoints, and DDP under torchrun.

:func:`train` runs one training session described by a :class:`TrainConfig` into a run folder::

    RUN_DIR/run.json          the full config of the run (architecture, data, optimisation)
    RUN_DIR/metrics.jsonl     one JSON line per evaluation
    RUN_DIR/samples/          sample grids (rows: T = 0, 0.5, 0.7, 1.0; fixed seeds)
    RUN_DIR/latest/           model folder (glowcore.load_model works) + trainer_state.{json,safetensors}
    RUN_DIR/best/             model folder of the best validation bits/dim so far
    RUN_DIR/events.out.tfevents.*  TensorBoard event files (glowcore.training.eventlog), when installed

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
import json
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import Tensor, nn

from ..base.progress import CancelToken, ProgressFn
from ..data.datasets import ImageDataset, dataset_channels, default_image_size, load_dataset
from ..io.checkpoint import check_architecture, load_model, save_model
from ..io.fileio import atomic_write_text
from ..io.grid import save_grid
from ..model import Glow, GlowConfig
from ..ops.evaluate import evaluate_bits_per_dim
from . import distributed
from .batches import _as_batch, _epoch_permutation, _flip_mask, _noise_seed
from .config import TrainConfig, TrainResult, build_model, learning_rate
from .ema import EMA
from .eventlog import open_event_log
from .trainstate import (  # noqa: F401  (the state helpers are part of this module's interface)
    STATE_JSON, TrainingError, _iso_now, _latest_dir, _recover_dir, _replace_dir, _save_checkpoint, _set_rng_state,
    _trim_metrics, _unflatten_optimizer, load_trainer_state,
)

__all__ = [
    "Trainer",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "train",
    "load_trainer_state",
    "RUN_CONFIG_NAME",
    "SAMPLE_TEMPERATURES",
]

RUN_CONFIG_NAME = "run.json"
SAMPLE_TEMPERATURES = (0.0, 0.5, 0.7, 1.0)
SAMPLE_SEED = 0
VAL_NOISE_SEED = 12345


# ------------------------------------------------------------------------------ helpers
class _LossModule(nn.Module):
    """Wraps a Glow so that DDP sees the loss computation as ``forward``."""

    def __init__(self, model: Glow):
        super().__init__()
        self.model = model
        self.generator: Optional[torch.Generator] = None

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return self.model.bits_per_dim(x, generator=self.generator)


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


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
        trainer = Trainer(cfg, run_dir, state_meta, state_tensors, progress=progress, cancel=cancel, log=log,
                          data_progress=data_progress)
        return trainer.run(handle_signals=handle_signals)
    finally:
        torch.set_num_threads(threads_before)


class Trainer:
    """One training session of a run folder: set up by the constructor (data, model, optimizer,
    the state restored when resuming, weight averaging, DDP), run by :meth:`run`.

    The counters a checkpoint restores (``step``, ``epoch``, ``batch_in_epoch``, ``images_seen``,
    ``best_val``, ``skipped_total``) and what the evaluations keep (``metrics``, ``last_val``,
    ``last_train``) are attributes; :meth:`evaluate_and_save` reads and updates them.
    """

    def __init__(self, cfg: TrainConfig, run_dir: Path, state_meta: Optional[dict], state_tensors: dict[str, Tensor], *,
                 progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
                 log: Callable[[str], None] = print, data_progress: Optional[ProgressFn] = None) -> None:
        self.cfg, self.run_dir, self.state_meta = cfg, run_dir, state_meta
        self.progress, self.log = progress, log
        self.cancel = cancel or CancelToken()
        self.dist, self.device = distributed.init_distributed(cfg.device)
        self.is_main = self.dist.main
        self.say: Callable[[str], None] = log if self.is_main else (lambda _m: None)
        self._load_data(data_progress)
        self._build_model()
        self._write_run_record()
        self._initialize_actnorm()
        self._make_optimizer()
        self._restore(state_tensors)
        self._make_ema(state_tensors)
        self.net = distributed.wrap(self.dist, _LossModule(self.model), self.device)
        self.loss_module: _LossModule = self.net.module if self.dist.enabled else self.net  # type: ignore[assignment]
        self._stop_conditions()

    # ------------------------------------------------------------------ set-up
    def _load_data(self, data_progress: Optional[ProgressFn]) -> None:
        """The data (rank 0 builds the caches first; the others then read them) and the starting
        weights: the run's own checkpoint when resuming, else --init-from's model."""
        cfg, say = self.cfg, self.say
        start_path = _latest_dir(self.run_dir) if self.state_meta is not None else cfg.init_from
        self.start_model = load_model(start_path, device="cpu") if start_path else None
        if self.start_model is not None:
            image_size, self.channels = self.start_model.config.image_size, self.start_model.config.channels
            if self.state_meta is None:
                say(f"initialised from {cfg.init_from}")
        else:
            image_size = cfg.image_size or default_image_size(cfg.data)
            self.channels = dataset_channels(cfg.data)
            cfg.image_size = image_size
            check_architecture(GlowConfig(image_size=image_size, channels=self.channels, levels=cfg.levels, steps=cfg.steps,
                                          hidden=cfg.hidden, coupling=cfg.coupling, lu=cfg.lu, n_bits=cfg.n_bits,
                                          prior_hidden=cfg.prior_hidden or 0, dequant_hidden=cfg.dequant_hidden or 0))  # validates before any work
        datasets: dict[str, ImageDataset] = {}
        for turn in (0, 1):
            if (turn == 0) == self.is_main:
                for split in ("train", "val"):
                    datasets[split] = load_dataset(cfg.data, image_size, split, cache_dir=cfg.cache_dir, labels_csv=cfg.labels,
                                                   progress=data_progress if self.is_main else None, cancel=self.cancel)
            if turn == 0:
                distributed.barrier(self.dist)
        self.train_ds, self.val_ds = datasets["train"], datasets["val"]
        say(f"data: {self.train_ds.describe()}; {self.val_ds.describe()}")
        self.n_train = len(self.train_ds)
        if cfg.batch % self.dist.world:
            raise TrainingError(f"batch {cfg.batch} must be a multiple of the number of processes ({self.dist.world})")
        if self.n_train < cfg.batch:
            raise TrainingError(f"the training split has {self.n_train} images, fewer than one batch ({cfg.batch}); lower --batch")
        self.steps_per_epoch = self.n_train // cfg.batch
        self.local_batch = cfg.batch // self.dist.world
        self.val_subset = np.sort(np.random.default_rng([cfg.seed, 0x7A1]).permutation(len(self.val_ds))[: min(cfg.val_images, len(self.val_ds))])

    def _build_model(self) -> None:
        self.model = build_model(self.cfg, self.channels, self.device, self.start_model)
        for ds, what in ((self.train_ds, "training"), (self.val_ds, "validation")):
            ds.check_fits(self.model.config.image_size, self.model.config.channels, what)
        self.say(f"model: {self.model.describe()}")
        # the training images: the whole uint8 set on the GPU when it fits easily
        self.train_images: np.ndarray | Tensor = self.train_ds.images
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            if self.train_ds.images.nbytes < 0.2 * free:
                self.train_images = torch.from_numpy(np.ascontiguousarray(self.train_ds.images)).to(self.device)

    def _write_run_record(self) -> None:
        """The run folder, ``run.json`` and TensorBoard's event files (rank 0)."""
        self.events = None
        if not self.is_main:
            return
        run_dir, state_meta = self.run_dir, self.state_meta
        run_cfg_path = run_dir / RUN_CONFIG_NAME
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "samples").mkdir(exist_ok=True)
        import glowcore

        record = {
            "config": self.cfg.to_dict(),
            "architecture": self.model.config.to_dict(),
            "data": {"train": self.train_ds.describe(), "val": self.val_ds.describe(), "train_images": self.n_train,
                     "val_images": len(self.val_ds), "label_names": self.train_ds.label_names},
            "steps_per_epoch": self.steps_per_epoch,
            "world_size": self.dist.world,
            "device": str(self.device),
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
        try:  # (on resume, the events after the checkpoint are purged, as metrics.jsonl is trimmed)
            self.events = open_event_log(run_dir, self.cfg.tensorboard, None if state_meta is None else int(state_meta["step"]) + 1)
        except RuntimeError as e:
            raise TrainingError(str(e)) from None

    def _initialize_actnorm(self) -> None:
        """ActNorm initialisation from one large batch (before the optimizer and before DDP)."""
        cfg = self.cfg
        if self.state_meta is None and not self.model.initialized:
            n_init = min(cfg.init_batch, self.n_train)
            idx = np.random.default_rng([cfg.seed, 0x1217]).permutation(self.n_train)[:n_init]
            x0 = _as_batch(self.train_ds.images, np.sort(idx), self.device)
            with torch.no_grad():
                self.model.initialize(x0)
            del x0
            self.say(f"ActNorm initialised from {n_init} images")

    def _make_optimizer(self) -> None:
        cfg, model = self.cfg, self.model
        model.train()
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        if cfg.precision == "fp32":
            self.autocast: Any = contextlib.nullcontext()
        else:
            self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16 if cfg.precision == "bf16" else torch.float16)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.fused = True
        try:
            self.opt = torch.optim.Adam(self.params, lr=cfg.lr, fused=True)
        except (RuntimeError, TypeError):  # pragma: no cover - old torch or unsupported device
            self.fused = False
            self.opt = torch.optim.Adam(self.params, lr=cfg.lr)

    def _restore(self, state_tensors: dict[str, Tensor]) -> None:
        """The trainer state of a resumed run (else a fresh start, seeded)."""
        cfg, state_meta = self.cfg, self.state_meta
        self.step, self.epoch, self.batch_in_epoch, self.images_seen, self.elapsed_before = 0, 0, 0, 0, 0.0
        self.best_val: Optional[float] = None
        self.skipped_total = 0
        if state_meta is None:
            random.seed(cfg.seed)
            np.random.seed(cfg.seed % 2**32)
            torch.manual_seed(cfg.seed)
            return
        if state_meta.get("train_images") != self.n_train:
            raise TrainingError(
                f"the training data changed since the run started ({state_meta.get('train_images')} images then, {self.n_train} now); "
                f"the data order cannot continue exactly; start a new run with --init-from {self.run_dir / 'latest'}"
            )
        self.opt.load_state_dict(_unflatten_optimizer(state_meta["optimizer"], state_tensors))
        for p in self.params:  # the moments in the parameters' memory layout (channels-last, say)
            st = self.opt.state.get(p, {})
            for k, v in st.items():
                if isinstance(v, Tensor) and v.shape == p.shape:
                    st[k] = torch.empty_like(p).copy_(v)
        self.step, self.epoch, self.batch_in_epoch = state_meta["step"], state_meta["epoch"], state_meta["batch_in_epoch"]
        self.images_seen, self.elapsed_before = state_meta["images_seen"], state_meta["elapsed_s"]
        self.best_val, self.skipped_total = state_meta.get("best_val_bpd"), state_meta.get("skipped_steps", 0)
        _set_rng_state(state_meta["rng"], state_tensors)
        self.say(f"resumed {self.run_dir} at step {self.step} (epoch {self.epoch}, batch {self.batch_in_epoch}/{self.steps_per_epoch})")

    def _make_ema(self, state_tensors: dict[str, Tensor]) -> None:
        """Polyak averaging: the checkpoint's model files hold the average, its state the live weights."""
        self.ema: Optional[EMA] = None
        if self.cfg.ema is None:
            return
        self.ema = EMA(self.model, self.cfg.ema)
        if self.state_meta is not None:
            if "ema_updates" not in self.state_meta:
                raise TrainingError(f"{self.run_dir / 'latest'} was saved without weight averaging; cannot resume it with --ema")
            live = {k[len("live."):]: v for k, v in state_tensors.items() if k.startswith("live.")}
            with torch.no_grad():
                for name, p in self.model.named_parameters():
                    if name in live:
                        p.copy_(live[name].to(p.device, p.dtype))
            self.ema.updates = int(self.state_meta["ema_updates"])

    def _stop_conditions(self) -> None:
        cfg = self.cfg
        self.total_steps: Optional[int] = None
        if cfg.max_steps is not None:
            self.total_steps = cfg.max_steps
        if cfg.epochs is not None:
            by_epochs = int(math.ceil(cfg.epochs * self.steps_per_epoch))
            self.total_steps = by_epochs if self.total_steps is None else min(self.total_steps, by_epochs)
        if self.total_steps is None and cfg.max_minutes is None:
            self.say("no --epochs, --max-steps or --max-minutes: training until interrupted (Ctrl-C saves and exits)")

    # ------------------------------------------------------------------ evaluation
    def evaluate_and_save(self) -> None:
        """Evaluate, log a metrics line, save ``latest/`` (and ``best/`` when the validation
        bits/dim improved) and a sample grid (rank 0); then start a new averaging window."""
        now = time.monotonic()
        n_done = self.loss_count.item()
        train_bpd = (self.loss_sum.item() / n_done) if n_done else None
        ips = (self.images_seen - self.last_eval_images) / max(now - self.last_eval_time, 1e-9)
        live: dict[str, Tensor] = {}
        live_bpd: Optional[float] = None
        if self.ema is not None:
            live = {"live." + n: p.detach().cpu().contiguous().clone() for n, p in self.model.named_parameters() if p.requires_grad}
            if self.is_main:  # the live weights' figure beside the average's, to see what averaging gives
                live_bpd = self._val_bpd().bits_per_dim
        with (self.ema.swapped(self.model) if self.ema is not None else contextlib.nullcontext()):
            if self.is_main:
                self._evaluate_and_save_main(now, train_bpd, ips, live, live_bpd)
        distributed.barrier(self.dist)
        self.loss_sum, self.loss_count = self.dev_zero.clone(), self.dev_zero.clone()
        self.last_eval_time, self.last_eval_step, self.last_eval_images = time.monotonic(), self.step, self.images_seen

    def _val_bpd(self):
        """Validation bits/dim of the model's current weights, with the fixed noise (with a learned
        dequantiser, also the bound under uniform noise, comparable with runs without one)."""
        model = self.model
        model.eval()
        vgen = torch.Generator(device=self.device)
        vgen.manual_seed(VAL_NOISE_SEED)
        ev = evaluate_bits_per_dim(model, self.val_ds.images, self.val_subset, batch_size=self.cfg.eval_batch, generator=vgen)
        model.train()
        return ev

    def _evaluate_and_save_main(self, now: float, train_bpd: Optional[float], ips: float, live: dict[str, Tensor],
                                live_bpd: Optional[float]) -> None:
        cfg, model, run_dir, step, say = self.cfg, self.model, self.run_dir, self.step, self.say
        ev = self._val_bpd()
        model.eval()
        with torch.inference_mode():
            grid = torch.cat([model.sample(cfg.samples, t, seed=SAMPLE_SEED) for t in SAMPLE_TEMPERATURES])
        val_bpd = ev.bits_per_dim
        if not math.isfinite(val_bpd):
            say(f"step {step}: validation bits/dim is not finite; this checkpoint cannot become 'best'")
        model.train()
        save_grid(grid, run_dir / "samples" / f"step_{step:07d}.png", ncol=cfg.samples)
        save_grid(grid, run_dir / "samples" / "latest.png", ncol=cfg.samples)
        elapsed = self.elapsed_before + (now - self.session_start)
        epoch_f = step / self.steps_per_epoch
        line = {
            "step": step, "epoch": round(epoch_f, 4), "images": self.images_seen,
            "train_bpd": None if train_bpd is None else round(train_bpd, 5),
            "val_bpd": round(val_bpd, 5) if math.isfinite(val_bpd) else None,
            **({} if ev.uniform_noise is None else {"val_bpd_uniform_noise": round(ev.uniform_noise, 5)}),
            **({} if live_bpd is None else {"val_bpd_live": round(live_bpd, 5)}),
            "images_per_s": round(ips, 2), "lr": learning_rate(cfg, max(step - 1, 0)), "elapsed_s": round(elapsed, 1),
            "skipped_steps": int(self.skipped_total), "time": _iso_now(),
        }
        with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        self.metrics.append(line)
        if self.events is not None:
            self.events.log(line, grid, grid_columns=cfg.samples)
        self.last_val, self.last_train = val_bpd, train_bpd
        improved = math.isfinite(val_bpd) and (self.best_val is None or val_bpd < self.best_val)
        if improved:
            self.best_val = val_bpd
        model.metadata = {
            "metrics": {"val_bpd": val_bpd if math.isfinite(val_bpd) else None, "train_bpd": train_bpd, "best_val_bpd": self.best_val},
            "training": {
                "data": cfg.data, "step": step, "epoch": epoch_f, "images_seen": self.images_seen,
                "elapsed_s": round(elapsed, 1), "run_dir": str(run_dir.resolve()), "init_from": cfg.init_from,
                "config": cfg.to_dict(), "label_names": self.train_ds.label_names, "saved": _iso_now(),
            },
        }
        _save_checkpoint(run_dir / "latest", model, self.opt, self.fused, {
            "step": step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "images_seen": self.images_seen,
            "elapsed_s": elapsed, "best_val_bpd": self.best_val, "skipped_steps": int(self.skipped_total),
            "train_images": self.n_train, "steps_per_epoch": self.steps_per_epoch, "config": cfg.to_dict(),
            **({} if self.ema is None else {"ema_updates": self.ema.updates}),
        }, extra=live)
        if improved:
            tmp = run_dir / ".best.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            save_model(model, tmp)
            _replace_dir(tmp, run_dir / "best")
        say(
            f"step {step} epoch {epoch_f:.2f}: train {train_bpd if train_bpd is None else f'{train_bpd:.4f}'} "
            f"val {val_bpd:.4f} bits/dim{' (best)' if improved else ''}"
            + ("" if ev.uniform_noise is None else f" ({ev.uniform_noise:.4f} under uniform noise)")
            + f", {ips:.1f} images/s, lr {line['lr']:.2e}"
            + ("" if live_bpd is None else f" (averaged weights; live weights {live_bpd:.4f})")
        )

    # ------------------------------------------------------------------ the loop
    def run(self, handle_signals: bool = False) -> TrainResult:
        """Train until a stop condition (``max_steps``, ``epochs``, ``max_minutes``, ``cancel``; with
        ``handle_signals`` SIGINT/SIGTERM set ``cancel``), evaluating and checkpointing on the way
        and at the end."""
        old_handlers: dict = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            cancel = self.cancel

            def on_signal(signum, _frame):
                if cancel.cancelled:
                    return
                cancel.cancel()
                print(f"\n{signal.Signals(signum).name}: finishing the current step, saving and exiting...", file=sys.stderr)

            for sig in (signal.SIGINT, signal.SIGTERM):
                old_handlers[sig] = signal.signal(sig, on_signal)
        try:
            interrupted = self._loop()
        finally:
            for sig, h in old_handlers.items():
                signal.signal(sig, h)
            if self.events is not None:
                self.events.close()
        if self.is_main and interrupted:
            self.say(f"stopped at step {self.step}; saved {self.run_dir / 'latest'}; continue with: glow train --resume --out {self.run_dir}")
        return TrainResult(self.run_dir, self.step, self.epoch, self.images_seen, self.last_val, self.best_val, self.last_train,
                           interrupted, int(self.skipped_total), self.metrics, self.model)

    def _loop(self) -> bool:
        """The training steps; returns whether it was interrupted (cancelled)."""
        cfg, device, dist_info, cancel = self.cfg, self.device, self.dist, self.cancel
        opt, params, net, model, ema = self.opt, self.params, self.net, self.model, self.ema
        total_steps, steps_per_epoch = self.total_steps, self.steps_per_epoch
        gen = torch.Generator(device=device)
        self.loss_module.generator = gen
        dev_zero = self.dev_zero = torch.zeros((), device=device)
        self.loss_sum, self.loss_count = dev_zero.clone(), dev_zero.clone()
        bad_total, bad_run = dev_zero.clone(), dev_zero.clone()
        sync_every_step = device.type == "cpu"
        start_step = self.step
        self.session_start = session_start = time.monotonic()
        self.last_eval_time = session_start
        self.last_eval_step, self.last_eval_images = self.step, self.images_seen
        last_report = 0.0
        self.metrics: list[dict] = []
        self.last_val: Optional[float] = None
        self.last_train: Optional[float] = None
        interrupted = False
        perm: Optional[Any] = None
        perm_epoch = -1
        grad_clip = float(cfg.grad_clip) if cfg.grad_clip > 0 else float("inf")
        known_bad = self.skipped_total
        while True:
            # -- decide (stop / evaluate); time-based decisions are agreed among ranks every few steps
            if total_steps is not None and self.step >= total_steps:
                break
            now = time.monotonic()
            check_now = not dist_info.enabled or (self.step - start_step) % 20 == 0
            if check_now:
                want_stop = cancel.cancelled or (cfg.max_minutes is not None and now - session_start >= cfg.max_minutes * 60)
                want_eval = now - self.last_eval_time >= cfg.eval_minutes * 60 or (
                    cfg.eval_steps is not None and self.step - self.last_eval_step >= cfg.eval_steps)
                want_stop, want_eval = distributed.agreed(dist_info, [want_stop, want_eval], device)
                if want_stop:
                    interrupted = cancel.cancelled
                    break
                if want_eval and self.step > self.last_eval_step:
                    self.evaluate_and_save()

            # -- the batch
            step = self.step
            if perm_epoch != self.epoch:
                p = _epoch_permutation(cfg.seed, self.epoch, self.n_train)
                perm = torch.from_numpy(p).to(device) if isinstance(self.train_images, Tensor) else p
                perm_epoch = self.epoch
            lo = self.batch_in_epoch * cfg.batch + dist_info.rank * self.local_batch
            x = _as_batch(self.train_images, perm[lo : lo + self.local_batch], device)
            if cfg.hflip:
                flip = torch.from_numpy(_flip_mask(cfg.seed, step, dist_info.rank, x.shape[0])).to(device)
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            gen.manual_seed(_noise_seed(cfg.seed, step, dist_info.rank))
            lr = learning_rate(cfg, step)
            for g in opt.param_groups:
                g["lr"] = lr

            # -- the step
            with self.autocast:
                bpd = net(x)
            loss = bpd.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
            finite = torch.isfinite(norm) & torch.isfinite(loss.detach())
            bad = (~finite).to(dev_zero.dtype)
            if self.fused:
                opt.found_inf = bad  # fused Adam skips the update (and its step count) on device
                opt.step()
            elif bool(finite):
                opt.step()
            if ema is not None:
                ema.update(model)
            self.loss_sum += torch.where(finite, loss.detach(), dev_zero)
            self.loss_count += finite.to(dev_zero.dtype)
            bad_total += bad
            bad_run = (bad_run + 1) * bad

            self.step = step = step + 1
            self.images_seen += cfg.batch
            self.batch_in_epoch += 1
            if self.batch_in_epoch >= steps_per_epoch:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0

            # -- report (the only host syncs: on CPU every step, on GPU a few times a second)
            now = time.monotonic()
            if sync_every_step or now - last_report >= 0.5 or (total_steps is not None and step >= total_steps):
                last_report = now
                run_len, self.skipped_total = int(bad_run.item()), int(bad_total.item())
                if self.skipped_total > known_bad:
                    self.say(f"step {step}: skipped {self.skipped_total - known_bad} step(s) with NaN/Inf loss or gradients ({self.skipped_total} in total)")
                    known_bad = self.skipped_total
                if run_len >= cfg.max_bad_steps:
                    raise TrainingError(
                        f"training diverged: {run_len} steps in a row had NaN/Inf loss or gradients (at step {step}); "
                        f"the last checkpoint is {self.run_dir / 'latest'}; try a lower --lr, a longer --warmup or --grad-clip"
                    )
                if self.events is not None or (self.progress is not None and self.is_main):
                    cnt = self.loss_count.item()  # (one sync for both)
                    cur = self.loss_sum.item() / cnt if cnt else float("nan")
                    if self.events is not None:
                        self.events.running(step, cur)
                    if self.progress is not None and self.is_main:
                        self._report(now, start_step, cur)
        if self.step > start_step or self.state_meta is None:
            self.evaluate_and_save()
        else:  # resumed at its stop condition (or stopped at once): the checkpoint is already current
            self.say(f"{self.run_dir} is already at step {self.step}; nothing to train (raise --max-steps or --epochs to continue)")
        return interrupted

    def _report(self, now: float, start_step: int, cur: float) -> None:
        """Progress: ``cur`` is the running training bits/dim since the last evaluation."""
        cfg, step, total_steps = self.cfg, self.step, self.total_steps
        dt = now - self.session_start
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
        assert self.progress is not None
        self.progress(done, total, f"step {step} epoch {step / self.steps_per_epoch:.2f} bpd {cur:.4f} {ips:.1f} img/s{eta}")
