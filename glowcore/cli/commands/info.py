"""glow info MODEL: architecture, parameters, bits/dim if known, attribute directions."""

from __future__ import annotations

import argparse
import json


def pick_model(args: argparse.Namespace):
    """MODEL or --model (the same one if both are given)."""
    if args.model and args.model_opt and args.model != args.model_opt:
        raise ValueError("give the model either as MODEL or as --model, not two different ones")
    return args.model or args.model_opt


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="describe a model", description="Print a model's architecture, size, bits/dim and directions.")
    p.add_argument("model", nargs="?", default=None, metavar="MODEL", help="model folder, .safetensors file or bundled name (default: the bundled face model)")
    p.add_argument("--model", dest="model_opt", default=None, metavar="MODEL", help="same as MODEL (as every command takes it)")
    p.add_argument("--json", action="store_true", help="print the model's config as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...io.checkpoint import load_model, read_config, resolve_model_path

    path = resolve_model_path(pick_model(args))
    model = load_model(path, device="cpu")
    if args.json:
        print(json.dumps(read_config(path), indent=2))
        return 0
    c = model.config
    print(f"model:       {path}")
    print(f"image:       {c.image_size}x{c.image_size}, {c.channels} channel(s), {c.n_bits}-bit")
    print(f"flow:        L={c.levels} levels x K={c.steps} steps, hidden {c.hidden}, {c.coupling} coupling, {'LU' if c.lu else 'plain'} 1x1 conv")
    print(f"priors:      learned; split priors {'with networks ' + str(c.prior_hidden) + ' wide' if c.prior_hidden else 'a 3x3 convolution each'}")
    print(f"noise:       {'learned dequantisation, ' + str(c.dequant_hidden) + ' wide (training and bits/dim only)' if c.dequant_hidden else 'uniform dequantisation'}")
    sp = model.sampling_prior
    print(f"sampling:    top level {'from a Gaussian fitted to real faces (rank ' + str(sp.rank) + ')' if sp is not None else 'from N(0, I)'}")
    print(f"parameters:  {model.num_parameters():,}")
    print(f"latent:      {model.dim} values in levels {', '.join('x'.join(map(str, s)) for s in model.latent_shapes)}")
    metrics = model.metadata.get("metrics", {}) if isinstance(model.metadata, dict) else {}
    bpd = metrics.get("val_bpd") if isinstance(metrics, dict) else None
    uniform = metrics.get("val_bpd_uniform_noise") if isinstance(metrics, dict) else None
    extra = f"; {uniform:.4f} under uniform noise" if isinstance(uniform, (int, float)) else ""
    print(f"bits/dim:    {bpd:.4f} (validation, {c.n_bits}-bit{extra})" if isinstance(bpd, (int, float)) else "bits/dim:    unknown")
    names = sorted(model.directions)
    print(f"directions:  {len(names)}" + (f": {', '.join(names)}" if names else ""))
    return 0
