"""glow sample: a grid of samples at one or more temperatures."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("sample", help="sample faces to a PNG grid", description="Sample images from a model and save them as a PNG grid (one row per temperature).")
    p.add_argument("--model", default=None, help="model folder, .safetensors file or bundled name (default: the bundled face model)")
    p.add_argument("-n", "--num", type=int, default=8, help="samples per temperature (default 8)")
    p.add_argument("-t", "--temperature", type=float, nargs="+", default=[0.7], help="one or more temperatures (default 0.7)")
    p.add_argument("--detail-t", type=float, default=None, metavar="T", help="temperature of the finest half of the levels (texture), the others keeping -t (pose, identity); e.g. -t 0.9 --detail-t 0.5")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--scale", type=int, default=1, help="upscale factor for the PNG (default 1)")
    p.add_argument("-o", "--out", default="samples.png", help="output PNG (default samples.png)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import load_model
    from ..grid import save_grid

    if args.num < 1:
        raise ValueError("--num must be at least 1")
    model = load_model(args.model, device=args.device)
    for t in args.temperature:  # every temperature checked before any work
        model.level_temperatures(t, args.detail_t)
    rows = [model.sample(args.num, t, seed=args.seed, detail_temperature=args.detail_t) for t in args.temperature]
    save_grid(torch.cat(rows), args.out, ncol=args.num, scale=args.scale)
    detail = "" if args.detail_t is None else f" (finest {model.detail_levels} level(s) at {args.detail_t:g})"
    print(f"wrote {args.out}: {len(rows)} row(s) x {args.num} at T={', '.join(f'{t:g}' for t in args.temperature)}{detail}, seed {args.seed}")
    return 0
