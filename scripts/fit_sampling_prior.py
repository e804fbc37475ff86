"""Fit a model's top-level sampling prior (``Glow.sampling_prior``, ``glowcore.nn.priors.FittedNoise``)
to the encodings of real training faces, and write the model with it:

    python scripts/fit_sampling_prior.py assets/models/celeba64 --data celeba:../shared/data/celeba64 --out runs/m

The faces are drawn (seeded) from the *train* partition; the fit is checked on validation faces:
the log-likelihood of their top-level encodings under the fitted Gaussian against the standard
normal the model samples from without it (a measure of the mismatch it removes, not of the
model's bits/dim, which the prior does not enter). Sampling changes (seeds give other faces);
encoding, decoding, editing and the model's bits/dim do not.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="model folder or bundled name")
    p.add_argument("--data", required=True, help="dataset spec with a train and a val partition, e.g. celeba:PATH")
    p.add_argument("--out", required=True, help="model folder to write (not the model's own)")
    p.add_argument("--faces", type=int, default=12000, help="train faces to fit on (default 12000)")
    p.add_argument("--rank", type=int, default=256, help="principal directions with their own variance (default 256)")
    p.add_argument("--val-faces", type=int, default=1000, help="validation faces the fit is checked on")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from glowcore import load_model, save_model
    from glowcore.base.progress import ConsoleProgress
    from glowcore.data.datasets import load_dataset
    from glowcore.nn.priors import FittedNoise, standard_normal_logp
    from glowcore.ops.directions import encode_images

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu").eval()
    src = Path(model.source_path).resolve() if model.source_path else None
    if src is not None and Path(args.out).resolve() in (src, src.parent if src.is_file() else src):
        p.error(f"--out {args.out}: that is the model's own folder; write the new model elsewhere")
    train = load_dataset(args.data, model.config.image_size, "train")
    val = load_dataset(args.data, model.config.image_size, "val")
    if args.faces <= args.rank:
        p.error(f"--faces ({args.faces}) must be larger than --rank ({args.rank})")
    top = int(np.prod(model.latent_shapes[-1]))

    def top_eps(images, what: str) -> torch.Tensor:
        flat = encode_images(model, images, batch_size=100, progress=ConsoleProgress(what, unit="faces"))
        return flat[:, -top:]  # the flat latent is finest level first: the top level is last

    idx = np.sort(np.random.default_rng(args.seed).choice(len(train), min(args.faces, len(train)), replace=False))
    fit = FittedNoise.fit(top_eps(np.ascontiguousarray(train.images[idx]), "encoding train faces"), args.rank)
    n_val = min(args.val_faces, len(val))
    check = top_eps(np.ascontiguousarray(val.images[:n_val]), "encoding validation faces")
    gain = float((fit.log_prob(check) - standard_normal_logp(check.double())).mean())
    print(f"fitted on {len(idx)} train faces: rank {fit.rank}, sigma {fit.sigma:.3f}; on {n_val} validation faces the top level's "
          f"encodings are {gain:.1f} nats per face ({gain / (model.dim * math.log(2)):.4f} bits/dim of the whole image) more likely "
          "under it than under N(0, I)")
    model.sampling_prior = fit
    model.metadata = {**model.metadata, "sampling_prior": {"fit_faces": len(idx), "rank": fit.rank, "train_partition": True,
                                                           "val_gain_nats_per_face": round(gain, 1), "data": args.data}}
    save_model(model, args.out, dtype=getattr(torch, args.dtype))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
