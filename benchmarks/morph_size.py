"""Morphs at a chosen size: how much sharper the detail transfer makes the frames, and how long.

For pairs of full-size photos (default: the CelebA originals in ../shared/data/celeba_full_sample),
renders a two-keyframe morph at each size with and without the photos' detail and prints, at a
few points of the way, the frames' gradient energy as a fraction of the aligned photo's own (1.0
= as sharp as the photo at that size), then the export time per frame (MP4).

    python benchmarks/morph_size.py [--photos DIR] [--pairs 8] [--sizes 256 512] [--frames 21]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import glowcore
from glowcore.ops.align import align, read_photo, render_face
from glowcore.base.images import to_uint8
from glowcore.ops.interpolate import interpolate, interpolation_times
from glowcore.ops.morphsize import photo_keyframe, sized_frames
from glowcore.latent import Latent
from glowcore.ops.video import render_morph

HERE = Path(__file__).resolve().parent
DEFAULT_PHOTOS = HERE.parent.parent / "shared" / "data" / "celeba_full_sample" / "img_align_celeba"


def energy(a: np.ndarray) -> float:
    g = a.astype(np.float64).mean(2)
    return float((np.diff(g, axis=0) ** 2).mean() + (np.diff(g, axis=1) ** 2).mean())


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--frames", type=int, default=21)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not args.photos.is_dir():
        print(f"{args.photos}: no such folder of photos (give --photos DIR)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    model = glowcore.load_model(device="cpu")
    files = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: 2 * args.pairs]
    points = [0, args.frames // 8, args.frames // 4, args.frames // 2]
    print(f"{cpu_name()}, {args.threads} threads, torch {torch.__version__}; {len(files) // 2} pairs, {args.frames} frames, smooth ease")
    src, dst, u = interpolation_times(2, args.frames, "smooth")
    for size in args.sizes:
        rows = {True: [], False: []}
        for i in range(0, len(files) - 1, 2):
            keys = [photo_keyframe(model, f, size, name=f.name) for f in files[i : i + 2]]
            ref = energy(render_face(read_photo(files[i]), align(read_photo(files[i])).transform, size))
            path = interpolate(Latent.cat([k.latent for k in keys]), args.frames, mode="slerp", ease="smooth")
            with torch.inference_mode():
                decoded = list(to_uint8(model.decode(path)))
            for detail in (True, False):
                frames = list(sized_frames(decoded, src, dst, u, [k.detail if detail else None for k in keys], size))
                rows[detail].append([energy(frames[p]) / ref for p in points])
        print(f"\nsize {size}: gradient energy / the aligned photo's, at frames {points} (u = {', '.join(f'{u[p]:.2f}' for p in points)})")
        for detail in (True, False):
            r = np.asarray(rows[detail])
            print(f"  {'with detail   ' if detail else 'model, enlarged'}: " + "  ".join(f"{m:.2f}" for m in r.mean(0)))
        keys = [photo_keyframe(model, f, size, name=f.name) for f in files[:2]]
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            render_morph(model, Latent.cat([k.latent for k in keys]), Path(tmp) / "m.mp4", frames=args.frames,
                         size=size, details=[k.detail for k in keys])
            dt = time.perf_counter() - t0
        print(f"  export: {dt:.2f} s for {args.frames} frames ({1000 * dt / args.frames:.0f} ms per frame, MP4)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
