"""glow train: train a Glow model on CelebA, an image folder or Fashion-MNIST (resumable, DDP)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """\
data specs:
  celeba:PATH            CelebA layout (img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt)
  folder:PATH            any folder of JPEG/PNG/WebP/BMP/GIF/TIFF images (recursive); optional PATH/labels.csv
  fashion-mnist[:PATH]   Fashion-MNIST idx .gz files (default /usr/share/datasets/fashion-mnist)

examples:
  glow train --data celeba:../shared/data/celeba64 --out runs/celeba64 --max-minutes 60
  glow train --resume --out runs/celeba64 --max-minutes 60
  glow train --data celeba:../shared/data/celeba64 --out runs/more --init-from celeba64
  torchrun --nproc_per_node=4 -m glowcore.cli.main train --data celeba:PATH --out runs/ddp --batch 256
"""


def add_parser(sub) -> None:
    from ...nn.coupling import COUPLINGS
    from ...training.config import LR_SCHEDULES, PRECISIONS

    S = argparse.SUPPRESS
    p = sub.add_parser(
        "train", help="train a model (resumable, multi-GPU under torchrun)",
        description="Train a Glow model. Writes RUN_DIR/run.json, metrics.jsonl, samples/, latest/ and best/ "
        "(model folders that glow and the explorer load). Ctrl-C or SIGTERM saves and exits; --resume continues exactly.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=S,
    )
    g = p.add_argument_group("run")
    g.add_argument("--data", metavar="SPEC", help="data set spec (see below)")
    g.add_argument("--out", metavar="RUN_DIR", help="run folder (created)")
    g.add_argument("--config", metavar="TOML", help="read options from a TOML file (command-line options override it)")
    g.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    g.add_argument("--init-from", metavar="MODEL", help="start from an existing model's weights (folder, .safetensors or bundled name); its architecture is used")
    a = p.add_argument_group("architecture")
    a.add_argument("--image-size", type=int, help="image side (default: the data's own, 64 for CelebA, 32 for Fashion-MNIST)")
    a.add_argument("--levels", type=int, help="levels L (default 4)")
    a.add_argument("--steps", type=int, help="flow steps per level K (default 8)")
    a.add_argument("--hidden", type=int, help="coupling network width (default 128)")
    a.add_argument("--prior-hidden", type=int, help="width of a network in each split prior, 0 = the paper's single 3x3 convolution (default 0); with --init-from, adds such networks to a model without them, starting from its exact function")
    a.add_argument("--dequant-hidden", type=int, help="width of a learned dequantisation noise distribution (Flow++), 0 = uniform noise (default 0); for training and bits/dim only, decoding never uses it; with --init-from, adds one to a model without one, starting as uniform noise")
    a.add_argument("--coupling", choices=list(COUPLINGS), help="coupling type (default affine)")
    a.add_argument("--no-lu", dest="lu", action="store_false", help="plain 1x1 convolutions instead of the LU form")
    a.add_argument("--n-bits", type=int, help="bit depth the images are quantised to (default 5)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--batch", type=int, help="images per optimizer step, across all processes (default 32)")
    o.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    o.add_argument("--warmup", type=int, help="linear learning-rate warm-up, in steps (default 500)")
    o.add_argument("--lr-schedule", choices=list(LR_SCHEDULES), help="after warm-up: constant, or cosine decay to --lr-min at --max-steps (default constant; may change on --resume)")
    o.add_argument("--lr-min", type=float, help="learning rate reached at --max-steps by the cosine schedule (default 0)")
    o.add_argument("--decay-start", type=int, help="step where the cosine decay starts (default: the end of warm-up; on a resumed run, e.g. its current step)")
    o.add_argument("--hflip", action="store_true", help="augment: mirror each training image left-right with probability 1/2 (faces, most photos; not text or digits); may change on --resume")
    o.add_argument("--grad-clip", type=float, help="gradient-norm clip, 0 = off (default 50)")
    o.add_argument("--ema", type=float, metavar="DECAY", help="Polyak-average the weights with this decay (e.g. 0.999, warmed up as min(DECAY, (1+n)/(10+n))): evaluations, best/ and latest/ hold the average, the live weights stay in the trainer state (default off)")
    o.add_argument("--epochs", type=float, help="stop after this many epochs in total")
    o.add_argument("--max-minutes", type=float, help="stop after this many minutes of this session")
    o.add_argument("--max-steps", type=int, help="stop after this many optimizer steps in total")
    o.add_argument("--seed", type=int, help="seed for weights, data order and noise (default 0)")
    o.add_argument("--init-batch", type=int, help="images for ActNorm's data-dependent initialisation (default 512)")
    o.add_argument("--max-bad-steps", type=int, help="stop after this many NaN/Inf steps in a row (default 50)")
    e = p.add_argument_group("evaluation")
    e.add_argument("--eval-minutes", type=float, help="evaluate, sample and checkpoint every N minutes (default 5)")
    e.add_argument("--eval-steps", type=int, help="also every N steps")
    e.add_argument("--val-images", type=int, help="validation images for bits/dim (default 1000)")
    e.add_argument("--eval-batch", type=int, help="batch size for validation (default 100)")
    e.add_argument("--samples", type=int, help="samples per temperature in the grids (default 8)")
    m = p.add_argument_group("data and machine")
    m.add_argument("--labels", metavar="CSV", help="labels CSV for folder: data (filename,attr1,...)")
    m.add_argument("--cache-dir", metavar="DIR", help="decoded-image cache (default ~/.cache/glow-explorer/data)")
    m.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: best available)")
    m.add_argument("--threads", type=int, help="CPU threads for torch (torch.set_num_threads)")
    m.add_argument("--precision", choices=list(PRECISIONS), help="coupling networks in bf16/fp16 under autocast (flows and log-dets stay fp32); bf16 about doubles CPU throughput on AVX512-BF16 machines (default fp32)")
    m.add_argument("--no-progress", dest="show_progress", action="store_false", help="no live progress bar")
    m.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, help="TensorBoard event files in the run folder (tensorboard --logdir runs): bits/dim, learning rate, speed and sample grids (default: written when the tensorboard package is installed)")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    """Defaults <- run.json (with --resume) <- TOML (--config) <- command-line options."""
    from ...training.config import TrainConfig, load_toml_config
    from ...training.train import RUN_CONFIG_NAME, TrainingError

    given = {k: v for k, v in vars(args).items() if k in TrainConfig.field_names()}
    values: dict = {}
    resume = bool(getattr(args, "resume", False))
    if resume:
        if "out" not in given:
            raise TrainingError("--resume needs --out RUN_DIR (the run to continue)")
        run_json = Path(given["out"]).expanduser() / RUN_CONFIG_NAME
        if not run_json.is_file():
            raise TrainingError(f"{run_json} does not exist: there is no run to resume in {given['out']}")
        try:
            values.update(json.loads(run_json.read_text(encoding="utf-8"))["config"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise TrainingError(f"{run_json}: not a run config ({e})") from None
    if getattr(args, "config", None):
        values.update(load_toml_config(args.config))
    values.update(given)
    return TrainConfig.from_dict(values), resume


def run(args: argparse.Namespace) -> int:
    from ...base.progress import ConsoleProgress
    from ...training.train import train

    cfg, resume = build_config(args)
    out = Path(str(cfg.out or ".")).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is a file, not a run folder (--out names the folder of the run)")
    show = getattr(args, "show_progress", True)
    bar = ConsoleProgress("train", unit="steps") if show else None
    data_bar = ConsoleProgress("caching images", unit="images") if show else None

    def log(msg: str) -> None:
        if bar is not None:  # above the live bar, which stays
            bar.write(msg)
        else:
            print(msg, flush=True)

    result = train(cfg, resume=resume, progress=bar, log=log, data_progress=data_bar, handle_signals=True)
    if bar is not None:
        bar.close()
    if result.interrupted:  # (the run said where it stopped and how to continue)
        return 130
    if result.val_bpd is not None:
        best = f"{result.best_val_bpd:.4f}" if result.best_val_bpd is not None else "?"
        print(f"done: step {result.step}, val {result.val_bpd:.4f} bits/dim (best {best}); models in {result.run_dir / 'latest'} and {result.run_dir / 'best'}")
    return 0
