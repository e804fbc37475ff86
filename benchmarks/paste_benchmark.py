"""Timing and seams of editing a large photo: align + encode + edit + decode + paste.

    nice python benchmarks/paste_benchmark.py --data ../shared/data/celeba_full_sample --save /tmp/paste

A 4000x3000 photo is made from a CelebA original (enlarged x8, turned 12 degrees) on a dark, a
light and a busy background (without ../shared/data: a synthetic picture with a given face box).
Times are the median of ``--repeat`` warm runs (model and alignment network loaded, one torch
thread); the photo is already decoded. Also: the seam ratio (gradient energy of the result over
the mask's outer feather divided by the photo's own there; 1.0 = no added edge), and ``glow edit``
end to end in a fresh process (start, JPEG decode and encode included). ``--save`` writes the
composites (before | after, reduced) for looking at them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_photo(orig: np.ndarray | None, background: str, size=(4000, 3000), scale=8.0, angle=12.0, seed=0):
    import cv2

    w, h = size
    rng = np.random.default_rng(seed)
    if background == "dark":
        bg = np.full((h, w, 3), 18, np.uint8)
    elif background == "light":
        bg = np.full((h, w, 3), 238, np.uint8)
    else:
        small = rng.integers(0, 256, (h // 40, w // 40, 3), dtype=np.uint8)
        bg = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        bg = cv2.add(bg, rng.integers(0, 40, (h, w, 3), dtype=np.uint8))
    if orig is None:
        return bg, (1500.0, 800.0, 900.0, 900.0)
    a = math.radians(angle)
    r = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    oh, ow = orig.shape[:2]
    t = np.array([w / 2, h / 2]) - r @ np.array([ow / 2, oh / 2])
    m = np.hstack([r, t[:, None]])
    face = cv2.warpAffine(orig, m, (w, h), flags=cv2.INTER_CUBIC)
    inside = cv2.warpAffine(np.ones((oh, ow), np.float32), m, (w, h), flags=cv2.INTER_LINEAR)
    inside = cv2.GaussianBlur(inside, (0, 0), 6)[..., None]
    return (face * inside + bg * (1 - inside)).astype(np.uint8), None


def median_time(fn, repeat):
    ts = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/celeba_full_sample")
    ap.add_argument("--image", default="000001.jpg")
    ap.add_argument("--edit", default="Smiling=1.0")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--save", default=None, help="folder for the composites (PNG)")
    ap.add_argument("--no-cli", action="store_true")
    ap.add_argument("--face-mask", action="store_true", help="paste inside the feathered face mask (spread=False; glow edit --face-mask) instead of the default spread")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from glowcore import load_model
    from glowcore.ops.align import align, load_align_net
    from glowcore.ops.directions import edit
    from glowcore.ops.paste import paste, paste_mask, seam_ratio

    src = Path(args.data) / "img_align_celeba" / args.image
    orig = np.asarray(Image.open(src).convert("RGB")) if src.is_file() else None
    model = load_model(None)
    load_align_net()
    name, _, amount = args.edit.partition("=")
    amounts = {name: float(amount)}
    res: dict = {"photo": "4000x3000", "cpu": _cpu(), "torch_threads": 1, "repeat": args.repeat, "edit": args.edit, "spread": not args.face_mask, "backgrounds": {}}
    for bg in ("dark", "light", "busy"):
        photo, box = make_photo(orig, bg)
        t_align, aligned = median_time(lambda: align(photo, model.config.image_size, box=box), args.repeat)

        def encode_edit_decode():
            lat = model.encode(aligned.face[None])
            ed = edit(model, lat, amounts)
            with torch.inference_mode():
                both = model.decode(type(lat).cat([lat, ed]))
            return both

        t_model, both = median_time(encode_edit_decode, args.repeat)
        t_paste, out = median_time(lambda: paste(aligned, both[1], both[0], photo, spread=not args.face_mask), args.repeat)
        mask = paste_mask(aligned, spread=not args.face_mask)
        x0, y0 = (int(v) for v in np.floor(np.argwhere(mask > 0).min(0))[::-1])
        x1, y1 = (int(v) + 1 for v in np.argwhere(mask > 0).max(0)[::-1])
        inside = mask > 0
        outside_same = bool(np.array_equal(out[~inside], photo[~inside]))
        res["backgrounds"][bg] = {
            "align_s": round(t_align, 3),
            "encode_edit_decode_s": round(t_model, 3),
            "paste_s": round(t_paste, 3),
            "total_s": round(t_align + t_model + t_paste, 3),
            "face_frame_px": round(aligned.face_side),
            "turned_deg": round(aligned.angle, 1),
            "paste_region": f"{x1 - x0}x{y1 - y0}",
            "seam_ratio": round(seam_ratio(photo[y0:y1, x0:x1], out[y0:y1, x0:x1], mask[y0:y1, x0:x1]), 3),
            "outside_mask_bit_identical": outside_same,
            "changed_pixels": int((out != photo).any(2).sum()),
        }
        if args.save:
            d = Path(args.save)
            d.mkdir(parents=True, exist_ok=True)
            pair = np.hstack([photo[y0:y1, x0:x1], out[y0:y1, x0:x1]])
            Image.fromarray(pair).resize((pair.shape[1] * 600 // pair.shape[0], 600), Image.Resampling.LANCZOS).save(d / f"{bg}_face.png")
            Image.fromarray(np.hstack([photo, out])).reduce(8).save(d / f"{bg}_whole.png")
            Image.fromarray(np.hstack([aligned.face, (both[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), (both[1].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)])).resize((576, 192), Image.Resampling.NEAREST).save(d / f"{bg}_model.png")
    if not args.no_cli and orig is not None:
        photo, _ = make_photo(orig, "busy")
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "photo.jpg"
            Image.fromarray(photo).save(p, quality=92)
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "glowcore.cli.main", "edit", str(p), "--set", args.edit, "-o", str(Path(tmp) / "out.jpg"), *(["--face-mask"] if args.face_mask else [])], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            res["cli_end_to_end_s"] = round(time.perf_counter() - t0, 2)
            res["cli_rc"] = r.returncode
            if r.returncode:
                res["cli_err"] = r.stderr.strip()[-300:]
    print(json.dumps(res, indent=1))
    return 0


def _cpu() -> str:
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
