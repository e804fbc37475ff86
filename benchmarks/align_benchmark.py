"""Face alignment accuracy on CelebA originals under known rotations, scales and shifts.

    nice python benchmarks/align_benchmark.py --data ../shared/data/celeba_full_sample --copies 3

Each of the 300 full-size aligned originals (178x218) is turned by a random angle (+-20 degrees),
scaled by a random factor (x0.5 to x4, log-uniform) and put at a random place in a larger canvas
(random margins of up to 30% of its size on each side, the border repeated), with a known map A
(original -> copy). The truth is CelebA's own framing: the original's box 15,35,163,183 resized
to 64x64 (map C), so the right transform for the copy is C A^-1. The error of a recovered
transform M is measured where it matters, at CelebA's mean eye centres e in the 64x64 frame:
|M A C^-1 e - e| in pixels, the larger of the two eyes. A copy where no face is found counts as
a failure (infinite error). Also reported: the untouched originals, the coarse framing from the
face detector alone (no network), and how many CelebA 64x64 faces come back unchanged
(``--framed N``: frame_photo's "already framed" rule, and align's).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from glowcore.ops import align as al  # noqa: E402
from glowcore.ops.alignnet import EYES, FRAME, apply, compose, invert  # noqa: E402

CROP = (15.0, 35.0, 163.0, 183.0)
C = np.array([[FRAME / 148.0, 0, -15.0 * FRAME / 148.0], [0, FRAME / 148.0, -35.0 * FRAME / 148.0]])


def make_copy(orig: np.ndarray, rng: np.random.Generator, max_angle: float, scales: tuple[float, float]):
    """A turned, scaled, shifted copy of ``orig`` and the map original -> copy (continuous)."""
    import cv2

    h, w = orig.shape[:2]
    angle = rng.uniform(-max_angle, max_angle)
    s = math.exp(rng.uniform(math.log(scales[0]), math.log(scales[1])))
    a = math.radians(angle)
    r = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], float) @ r.T
    lo, hi = corners.min(0), corners.max(0)
    size = hi - lo
    margin_lo = rng.uniform(0, 0.3, 2) * size
    margin_hi = rng.uniform(0, 0.3, 2) * size
    t = -lo + margin_lo + rng.uniform(0, 1, 2)
    out_w, out_h = (int(math.ceil(v)) for v in size + margin_lo + margin_hi + 1)
    amap = np.hstack([r, t[:, None]])  # original -> copy
    img = cv2.warpAffine(orig, al.warp_matrix(invert(amap)), (out_w, out_h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return img, amap, angle, s


def eye_error(m_est: np.ndarray, amap: np.ndarray) -> float:
    true = compose(C, invert(amap))  # copy -> frame
    pts = apply(m_est, apply(invert(true), EYES))
    return float(np.linalg.norm(pts - np.asarray(EYES), axis=1).max())


def summary(errs: list[float]) -> dict:
    e = np.asarray(errs, float)
    fin = e[np.isfinite(e)]
    out = {"n": int(len(e)), "failures": int((~np.isfinite(e)).sum()), "within_1px": round(float((e <= 1).mean()), 4), "within_2px": round(float((e <= 2).mean()), 4), "within_3px": round(float((e <= 3).mean()), 4)}
    if len(fin):
        for q in (50, 90, 95, 99):
            out[f"p{q}"] = round(float(np.percentile(e, q)) if np.isfinite(np.percentile(e, q)) else float("inf"), 3)
        out["max_finite"] = round(float(fin.max()), 3)
    return out


def run_one(img: np.ndarray, steps: int):
    """The transform align() would use (detection, then ``steps`` refinements), or None."""
    found = al.locate(img, steps)
    return None if found is None else found[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/celeba_full_sample")
    ap.add_argument("--copies", type=int, default=3, help="transformed copies per original")
    ap.add_argument("--max-angle", type=float, default=20.0)
    ap.add_argument("--scales", type=float, nargs=2, default=(0.5, 4.0))
    ap.add_argument("--steps", type=int, default=al.STEPS)
    ap.add_argument("--framed", default="../shared/data/celeba64", help="CelebA 64x64 folder for the 'come back unchanged' count ('' to skip)")
    ap.add_argument("--framed-n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    root = Path(args.data) / "img_align_celeba"
    names = sorted(p.name for p in root.glob("*.jpg"))
    if not names:
        print(f"{root}: no images", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    res: dict = {"originals": len(names), "copies_per_original": args.copies, "max_angle": args.max_angle, "scales": list(args.scales), "steps": args.steps}
    ident, ident_coarse, errs, coarse, worst = [], [], [], [], []
    by_scale: dict = {}
    t0 = time.time()
    n_align = 0
    for n in names:
        orig = np.asarray(Image.open(root / n).convert("RGB"))
        m = run_one(orig, args.steps)
        ident.append(eye_error(m, np.hstack([np.eye(2), np.zeros((2, 1))])) if m is not None else math.inf)
        mc = run_one(orig, 0)
        ident_coarse.append(eye_error(mc, np.hstack([np.eye(2), np.zeros((2, 1))])) if mc is not None else math.inf)
        for _ in range(args.copies):
            img, amap, angle, s = make_copy(orig, rng, args.max_angle, tuple(args.scales))
            mc = run_one(img, 0)
            coarse.append(eye_error(mc, amap) if mc is not None else math.inf)
            m = run_one(img, args.steps)
            n_align += 1
            e = eye_error(m, amap) if m is not None else math.inf
            errs.append(e)
            band = "x0.5-1" if s < 1 else ("x1-2" if s < 2 else "x2-4")
            by_scale.setdefault(band, []).append(e)
            worst.append((e, n, round(angle, 1), round(s, 2)))
    elapsed = time.time() - t0
    res["copies"] = summary(errs)
    res["copies_coarse_detector_only"] = summary(coarse)
    res["copies_by_scale"] = {k: summary(v) for k, v in sorted(by_scale.items())}
    res["originals_untouched"] = summary(ident)
    res["originals_untouched_coarse"] = summary(ident_coarse)
    res["worst"] = [list(w) for w in sorted(worst, key=lambda w: -w[0])[:8]]
    res["worst_found"] = [list(w) for w in sorted((w for w in worst if math.isfinite(w[0])), key=lambda w: -w[0])[:12]]
    res["seconds_per_photo"] = round(elapsed / (n_align + 2 * len(names)), 4)
    if args.framed:
        from glowcore.ops.photo import frame_photo

        froot = Path(args.framed) / "img_align_celeba"
        fnames = sorted(p.name for p in froot.glob("*.jpg"))[: args.framed_n]
        same_old = same_new = 0
        for n in fnames:
            img = np.asarray(Image.open(froot / n).convert("RGB"))
            same_old += int(np.array_equal(frame_photo(Image.fromarray(img), FRAME).image, img))
            try:
                same_new += int(np.array_equal(al.align(img).face, img))
            except ValueError:
                pass
        res["framed_unchanged"] = {"n": len(fnames), "frame_photo": same_old, "align": same_new}
    text = json.dumps(res, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
