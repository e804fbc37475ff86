"""glow eval MODEL --data SPEC: a model's bits/dim on a data set's validation (or other) split."""

from __future__ import annotations

import argparse
import json
import math


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval", help="measure a model's bits/dim on a data set",
        description="Measure a model's bits/dim on a split of a data set, with fixed dequantisation noise (the same "
        "figure on every run). For a model with a learned dequantiser, also the bound under uniform noise.",
    )
    p.add_argument("model", nargs="?", default=None, metavar="MODEL", help="model folder, .safetensors file or bundled name (default: the bundled face model)")
    p.add_argument("--model", dest="model_opt", default=None, metavar="MODEL", help="same as MODEL (as every command takes it)")
    p.add_argument("--data", required=True, metavar="SPEC", help="data set spec: celeba:PATH, folder:PATH or fashion-mnist[:PATH]")
    p.add_argument("--split", default="val", choices=["train", "val", "test", "all"], help="which split (default val)")
    p.add_argument("--images", type=int, default=0, help="the first N images of the split (default: all)")
    p.add_argument("--batch", type=int, default=100, help="images per batch (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the dequantisation noise (default 0)")
    p.add_argument("--cache-dir", default=None, help="where decoded images are cached (default: the user cache)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ...io.checkpoint import load_model
    from ...data.datasets import load_dataset
    from ...ops.evaluate import evaluate_bits_per_dim
    from ...base.progress import ConsoleProgress
    from .info import pick_model

    if args.images < 0:
        raise ValueError(f"--images must be >= 0 (0: the whole split), got {args.images}")
    if args.batch < 1:
        raise ValueError(f"--batch must be at least 1, got {args.batch}")
    model = load_model(pick_model(args), device=args.device).eval()
    c = model.config
    data = load_dataset(args.data, c.image_size, args.split, cache_dir=args.cache_dir,
                        progress=None if args.json else ConsoleProgress("caching images", unit="images"))
    data.check_fits(c.image_size, c.channels)
    n = len(data) if args.images == 0 else min(args.images, len(data))
    gen = torch.Generator(device=model.device).manual_seed(args.seed)
    bar = None if args.json else ConsoleProgress("bits/dim", unit="images")
    ev = evaluate_bits_per_dim(model, data.images, np.arange(n), batch_size=args.batch, generator=gen, progress=bar)
    if bar is not None:
        bar.close()
    if not math.isfinite(ev.bits_per_dim):
        raise ValueError(f"bits/dim is not finite ({ev.bits_per_dim}): the model's weights blow up on {args.data} [{args.split}]")
    if args.json:
        print(json.dumps({"bits_per_dim": ev.bits_per_dim, "uniform_noise": ev.uniform_noise, "images": ev.images,
                          "n_bits": ev.n_bits, "split": args.split, "data": args.data}))
    else:
        print(f"{args.data} [{args.split}]: {ev.describe()}")
    return 0
