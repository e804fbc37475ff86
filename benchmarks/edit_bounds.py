"""How far each direction can take a face before the picture breaks: the ``bounds`` of its edits.

An edit adds ``amount x vector`` to a face's latent. Some directions leave the faces the model
knows long before the slider's end: the bundled model's Eyeglasses at +2 paints a band of
saturated blue, black and red over the eyes of most faces, and even +1 does so on a face that
already wears glasses. No decoding repairs it (the pass does not blow up; the latent is beyond the
data). So a direction may carry ``bounds`` ``[low, high]``: coordinates along it (as
``glowcore.ops.editing.project`` gives them) that an edit moves a face toward but never past
(``glowcore.ops.editing.bounded_amounts``: exact up to 3/4 of the bound, then bending). This
script measures them.

For each direction and each sign, the faces are edited by growing amounts (``--amounts``, with
the direction's own conditioning, unbounded) and decoded as the explorer shows them
(``glowcore.decoding.stable.stable_reverse``, before clamping). A face *breaks* at the first
amount where more than ``--max-share`` (2%) of its pixels have a channel more than ``--margin``
of the range outside it (below -0.125 or above 1.125 for images in [0, 1]: real faces and T=0.7
samples have none); its *break coordinate* is where that edit aimed (its coordinate plus the
amount). A side's bound is the ``--quantile`` (0.1) of the break coordinates: nine faces in ten
break only beyond it. A side where fewer than that share of faces break within the amounts tried
gets no bound. Chosen on ``--faces`` CelebA *train* faces plus as many T=0.7 samples (seeds 0..);
checked on as many *validation* faces and other samples (seeds 10000..): the share of them broken
at the slider's end with and without the bounds.

    python benchmarks/edit_bounds.py celeba64 --json bounds.json
    python scripts/apply_calibration.py assets/models/celeba64 --bounds bounds.json --out assets/models/celeba64

Writes ``{"bounds": {name: [low, high]}, ...}`` (``--json``; ``null`` for an unbounded side), which
``scripts/apply_calibration.py --bounds`` puts into a model. Without the CelebA data, samples only.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glowcore import load_model  # noqa: E402
from glowcore.decoding import stable  # noqa: E402
from glowcore.latent import Latent  # noqa: E402
from glowcore.ops.directions import edit, encode_images  # noqa: E402
from glowcore.ops.editing import coordinate_moves, project, slider_limit  # noqa: E402


@torch.inference_mode()
def over_range_share(model, latent: Latent, margin: float, batch: int = 50) -> np.ndarray:
    """Per face, the fraction of pixels with a channel more than ``margin`` (in units of the
    image range) outside the range, as the stable decoding gives them before clamping."""
    out = []
    for i in range(0, latent.batch_size, batch):
        x = stable.stable_reverse(model, latent[i : i + batch])  # image - 0.5
        out.append((x.abs() > 0.5 + margin).any(1).flatten(1).float().mean(1).numpy())
    return np.concatenate(out)


def break_coordinates(model, base: Latent, name: str, sign: float, amounts: Sequence[float], margin: float, max_share: float) -> np.ndarray:
    """Per face, the coordinate its edit aimed at when it first broke (``inf``: not within
    ``amounts``; ``nan``: broken before any edit, so it cannot tell)."""
    c = project(model, base, [name])[name]
    brk = np.full(base.batch_size, np.inf)
    brk[over_range_share(model, base, margin) > max_share] = np.nan
    for a in sorted(amounts):
        todo = np.where(np.isinf(brk))[0]
        if len(todo) == 0:
            break
        sub = base[torch.from_numpy(todo)]
        share = over_range_share(model, edit(model, sub, {name: sign * a}, bounded=False), margin)
        hit = share > max_share
        brk[todo[hit]] = c[todo[hit]] + float(coordinate_moves(model.direction_info.get(name, {}), np.array(sign * a)))
    return brk


def side_bound(brk: np.ndarray, sign: float, quantile: float) -> Optional[float]:
    """The ``quantile`` of the break coordinates (on the side ``sign``; faces broken before any
    edit, ``nan``, left out), or None when fewer than that share of the faces broke, or when it
    is not on that side of 0 (faces that break as soon as they move: no bound describes that)."""
    brk = brk[~np.isnan(brk)]
    if len(brk) == 0 or np.mean(np.isfinite(brk)) < quantile:
        return None
    v = np.sort(sign * brk)[max(0, int(np.ceil(quantile * len(brk))) - 1)]  # (inf sorts last)
    return float(sign * v) if np.isfinite(v) and v > 0 else None


def broken_share(model, base: Latent, name: str, amount: float, margin: float, max_share: float, bounded: bool) -> float:
    return float(np.mean(over_range_share(model, edit(model, base, {name: amount}, bounded=bounded), margin) > max_share))


def _faces(model, data: Optional[str], split: str, n: int, seed: int) -> Optional[Latent]:
    if not data or n <= 0:
        return None
    from glowcore.data.datasets import load_dataset

    ds = load_dataset(data, model.config.image_size, split)
    idx = np.sort(np.random.default_rng([seed, 3]).permutation(len(ds))[:n])
    return Latent.from_flat(encode_images(model, ds.images[idx]), model.latent_shapes)


def _default_data() -> Optional[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import attr_classifier as ac

    spec = ac.default_data_spec()
    return spec if Path(spec.split(":", 1)[-1]).exists() else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", default="celeba64")
    p.add_argument("--data", default=None, help="dataset spec for real faces (default: the shared CelebA when present; 'none': samples only)")
    p.add_argument("--faces", type=int, default=50, help="train faces (and as many samples) that choose the bounds")
    p.add_argument("--report-faces", type=int, default=50, help="validation faces (and as many other samples) the bounds are checked on")
    p.add_argument("--names", nargs="+", default=None, help="directions to measure (default: all the model's)")
    p.add_argument("--amounts", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0])
    p.add_argument("--margin", type=float, default=0.125)
    p.add_argument("--max-share", type=float, default=0.02)
    p.add_argument("--quantile", type=float, default=0.1)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if not 0 < args.quantile < 1 or not 0 <= args.max_share < 1 or args.margin < 0 or not args.amounts or min(args.amounts) <= 0:
        p.error("--quantile must be in (0, 1), --max-share in [0, 1), --margin >= 0, --amounts > 0")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = load_model(args.model, device="cpu").eval()
    data = _default_data() if args.data is None else (None if args.data == "none" else args.data)
    choose = [model.sample_latent(args.faces, args.temperature, seed=args.seed)]
    check = [model.sample_latent(args.report_faces, args.temperature, seed=args.seed + 10000)]
    for lst, split, n in ((choose, "train", args.faces), (check, "val", args.report_faces)):
        real = _faces(model, data, split, n, args.seed)
        if real is not None:
            lst.append(real)
    choose_lat, check_lat = Latent.cat(choose), Latent.cat(check)
    what = f"{args.faces} T={args.temperature} samples" + (f" + {args.faces} train faces" if data else "")
    print(f"choose on {what}; check on {check_lat.batch_size} other faces ({'validation faces + samples' if data else 'samples'})", flush=True)

    names = args.names or list(model.directions)
    rows: dict = {}
    bounds: dict = {}
    trial = None
    for nm in names:
        end = slider_limit(nm, model.direction_info.get(nm, {}))
        amounts = sorted({a for a in args.amounts if a <= end} | {end})
        b = []
        for sign in (-1.0, 1.0):
            brk = break_coordinates(model, choose_lat, nm, sign, amounts, args.margin, args.max_share)
            b.append(side_bound(brk, sign, args.quantile))
        row = {"bounds": b, "slider_end": end}
        if any(v is not None for v in b):
            bounds[nm] = b
            if trial is None:  # a copy of the model carrying the bounds found so far
                trial = load_model(args.model, device="cpu").eval()
            trial.direction_info.setdefault(nm, {})["bounds"] = b
            row["check"] = {f"{s:+g}": {"unbounded": broken_share(model, check_lat, nm, s, args.margin, args.max_share, False),
                                        "bounded": broken_share(trial, check_lat, nm, s, args.margin, args.max_share, True)}
                            for s in (-end, end)}
        rows[nm] = row
        chk = row.get("check")
        print(f"{nm:<20} bounds [{'-' if b[0] is None else f'{b[0]:.3f}'}, {'-' if b[1] is None else f'{b[1]:.3f}'}]"
              + ("" if not chk else "; faces broken at the slider's end (checked): " + ", ".join(
                  f"{k}: {v['unbounded']:.0%} -> {v['bounded']:.0%}" for k, v in chk.items()))
              + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    result = {"model": str(args.model), "bounds": bounds, "rows": rows, "settings": {k: v for k, v in vars(args).items() if k != "json"},
              "chosen_on": what, "cpu": platform.processor() or platform.machine(), "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
              "minutes": round((time.perf_counter() - t0) / 60, 1)}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{len(bounds)} of {len(names)} directions get bounds: " + (", ".join(bounds) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
