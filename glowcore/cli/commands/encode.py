"""glow encode: photos -> latents (framed like the training faces, encoded exactly)."""

from __future__ import annotations

import argparse

from ._common import add_model_args, console
from ._guard import add_overwrite_arg


def add_parser(sub) -> None:
    p = sub.add_parser(
        "encode",
        help="encode photos to latents",
        description="Frame photos like the training faces (face detection, or a centre crop) and encode them to "
        "latents, saved as an .npz file that edit and interpolate take. Prints each photo's framing, the "
        "reconstruction error and bits/dim.",
    )
    p.add_argument("images", nargs="+", help="photos (JPEG, PNG, WebP, BMP, ...) or folders of photos")
    add_model_args(p)
    p.add_argument("-o", "--out", default="latents.npz", help="output latent file (.npz; default latents.npz)")
    p.add_argument("--no-frame", action="store_true", help="centre-crop instead of looking for a face")
    p.add_argument("--framed", default=None, help="also save the framed photos as a PNG grid")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np
    import torch

    from ...io.checkpoint import load_model
    from ...base.images import to_tensor
    from ...latent import Latent
    from ...io.imagefiles import list_images
    from ...ops.photo import load_photo
    from ...io.grid import image_format
    from ._common import output_path, save_latents
    from ._guard import check_outputs, model_files

    out = output_path(args.out, (".npz",), "latent file")
    if args.framed:
        image_format(args.framed)
    check_outputs([out, args.framed], [*args.images, *model_files(args.model)], args.overwrite_input)
    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    files: list[Path] = []
    for item in args.images:
        p = Path(item)
        files.extend(list_images(p) if p.is_dir() else [p])
    model = load_model(args.model, device=args.device)
    size, channels = model.config.image_size, model.config.channels
    bar = console("framing") if len(files) > 1 else None
    imgs = []
    for i, f in enumerate(files):
        img, msg = load_photo(f, size, not args.no_frame, channels=channels)
        imgs.append(img)
        print(msg)
        if bar:
            bar(i + 1, len(files), "")
    arr = np.stack(imgs)
    bar = console("encoding") if len(files) > args.batch_size else None
    parts = []
    for start in range(0, len(arr), args.batch_size):
        parts.append(model.encode(arr[start : start + args.batch_size]))
        if bar:
            bar(min(len(arr), start + args.batch_size), len(arr), "")
    latent = Latent.cat(parts)
    with torch.inference_mode():
        x = to_tensor(arr, channels).to(model.device)
        recon = model.decode(latent)
        err = (recon - x).abs().flatten(1).max(1).values
        bpd = model.bits_per_dim(arr, noise=False)
    save_latents(out, latent, [str(f) for f in files])
    for f, e, b, z in zip(files, err.tolist(), bpd.tolist(), latent.flatten()):
        print(f"{f.name}: reconstruction max error {e * 255:.3f}/255, {b:.3f} bits/dim, |z|/sqrt(D) = {float(z.norm()) / model.dim ** 0.5:.3f}")
    if args.framed:
        from ...io.grid import save_grid

        save_grid(x, args.framed, ncol=min(8, len(files)))
        print(f"wrote {args.framed}")
    print(f"wrote {out}: {len(files)} latent(s) of {model.dim} values")
    return 0
