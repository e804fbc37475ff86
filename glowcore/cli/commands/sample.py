"""glow sample: a grid of samples at one or more temperatures."""

from __future__ import annotations

import argparse

from ._guard import add_overwrite_arg

CHUNK = 64  # images decoded at a time (memory stays bounded for large -n)


def add_parser(sub) -> None:
    p = sub.add_parser("sample", help="sample faces to a PNG grid", description="Sample images from a model and save them as a PNG grid (one row per temperature).")
    p.add_argument("--model", default=None, help="model folder, .safetensors file or bundled name (default: the bundled face model)")
    p.add_argument("-n", "--num", type=int, default=8, help="samples per temperature (default 8)")
    p.add_argument("-t", "--temperature", type=float, nargs="+", default=None,
                   help="one or more temperatures, each for every level unless --detail-t is given (default: 0.7 with the finest levels at 0.85, as measured)")
    p.add_argument("--detail-t", type=float, default=None, metavar="T", help="temperature of the finest half of the levels (texture), the others keeping -t (pose, identity); e.g. -t 0.9 --detail-t 0.5")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--scale", type=int, default=1, help="upscale factor for the PNG (default 1)")
    p.add_argument("-o", "--out", default="samples.png", help="output PNG (default samples.png)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ...io.checkpoint import load_model
    from ...io.grid import save_grid

    from ...io.grid import grid_size, image_format
    from ...base.limits import MAX_SAMPLES, check_output_size
    from ._guard import check_model_decodes, check_outputs, model_files, sampling_temperatures, seed, temperature

    if args.temperature is None:
        t, detail = sampling_temperatures(None, args.detail_t)
        temps = [t]
    else:
        temps = [temperature(t) for t in args.temperature]
        detail = None if args.detail_t is None else temperature(args.detail_t, "--detail-t")
    if not 1 <= args.num * len(temps) <= MAX_SAMPLES:
        raise ValueError(f"--num x temperatures must be from 1 to {MAX_SAMPLES} images, got {args.num} x {len(temps)}")
    seed(args.seed)
    if args.scale < 1:
        raise ValueError(f"--scale must be at least 1, got {args.scale}")
    image_format(args.out)
    check_outputs([args.out], model_files(args.model), args.overwrite_input)
    model = load_model(args.model, device=args.device)
    check_model_decodes(model, model.source_path)
    size = model.config.image_size
    check_output_size(args.out, *grid_size(args.num * len(temps), size, size, args.num, 2, args.scale))
    rows = []
    with torch.inference_mode():
        for t in temps:
            z = model.sample_latent(args.num, t, args.seed, detail_temperature=detail)
            rows += [model.decode(z[i : i + CHUNK]) for i in range(0, args.num, CHUNK)]
    save_grid(torch.cat(rows), args.out, ncol=args.num, scale=args.scale, finite=True)
    said = "" if detail is None else f" (finest {model.detail_levels} level(s) at {detail:g})"
    print(f"wrote {args.out}: {len(temps)} row(s) x {args.num} at T={', '.join(f'{t:g}' for t in temps)}{said}, seed {args.seed}")
    return 0
