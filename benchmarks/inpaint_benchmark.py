"""Inpainting benchmark: the flow's MAP completion vs OpenCV's cv2.inpaint (Telea, Navier-Stokes).

CelebA validation faces (partition 1 of list_eval_partition.txt, decoded with Pillow), three holes:
a centre 32x32 square, an eye band and a mouth band. PSNR and SSIM are computed over the hole only
(SSIM: Gaussian window 11, sigma 1.5, per channel, its map averaged over the hole pixels).

    python benchmarks/inpaint_benchmark.py --model /work/runs/celeba64/best --faces 32

The model defaults to the bundled one; figures go to docs/latent_ops.md with machine and date.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "celeba64"


def holes(size: int) -> dict[str, np.ndarray]:
    """Hole masks (True = unknown) in the geometry of CelebA's aligned 64x64 crops (scaled)."""
    k = size / 64
    def box(top: int, bottom: int, left: int, right: int) -> np.ndarray:
        m = np.zeros((size, size), bool)
        m[round(top * k) : round(bottom * k), round(left * k) : round(right * k)] = True
        return m
    # CelebA landmarks (aligned 178x218): eyes at y=111, mouth corners at y=152 -> crop rows 33 and 51.
    return {"centre 32x32": box(16, 48, 16, 48), "eye band": box(26, 40, 8, 56), "mouth band": box(44, 57, 16, 48)}


def load_faces(root: Path, n: int, size: int, offset: int = 0) -> np.ndarray:
    from PIL import Image

    part = [line.split() for line in (root / "list_eval_partition.txt").read_text().splitlines() if line.strip()]
    names = [name for name, p in part if p == "1"][offset : offset + n]
    faces = []
    for name in names:
        im = Image.open(root / "img_align_celeba" / name).convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BICUBIC)
        faces.append(np.asarray(im))
    return np.stack(faces)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM map (Wang et al. 2004) of two float images in [0, 1], (H, W, C), per channel."""
    import cv2

    c1, c2 = 0.01**2, 0.03**2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def hole_scores(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) and SSIM over the hole; uint8 (H, W, C) images."""
    a = result.astype(np.float32) / 255
    b = truth.astype(np.float32) / 255
    mse = float(((a - b)[mask] ** 2).mean())
    psnr = 10 * math.log10(1.0 / max(mse, 1e-12))
    ssim = float(ssim_map(a, b)[mask].mean())
    return psnr, ssim


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model folder, .safetensors or bundled name (default: bundled)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="CelebA folder (img_align_celeba + list_eval_partition.txt)")
    p.add_argument("--faces", type=int, default=32, help="number of validation faces (default 32)")
    p.add_argument("--offset", type=int, default=0, help="skip this many validation faces first")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the library's)")
    p.add_argument("--method", default="map", help="map or lbfgs (default map)")
    p.add_argument("--candidates", type=int, default=1, help="candidates per face; the best by objective is scored (default 1)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--json", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)

    import cv2
    import torch

    from glowcore import load_model, to_uint8
    from glowcore.ops.inpaint import inpaint

    torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu")
    size = model.config.image_size
    faces = load_faces(Path(args.data), args.faces, size, args.offset)
    inpaint(model, faces[0], holes(size)["centre 32x32"], candidates=1, steps=2)  # warm-up
    methods = ("flow (MAP)", "cv2 Telea", "cv2 Navier-Stokes")
    results: dict = {"model": str(model.source_path), "faces": len(faces), "steps": args.steps, "method": args.method,
                     "candidates": args.candidates, "threads": args.threads, "holes": {}}
    for hole_name, mask in holes(size).items():
        scores = {m: [] for m in methods}
        seconds = []
        m8 = mask.astype(np.uint8) * 255
        for face in faces:
            t = time.perf_counter()
            out = inpaint(model, face, mask, candidates=args.candidates, steps=args.steps, method=args.method)
            seconds.append(time.perf_counter() - t)
            scores["flow (MAP)"].append(hole_scores(to_uint8(out[0]), face, mask))
            scores["cv2 Telea"].append(hole_scores(cv2.inpaint(face, m8, 3, cv2.INPAINT_TELEA), face, mask))
            scores["cv2 Navier-Stokes"].append(hole_scores(cv2.inpaint(face, m8, 3, cv2.INPAINT_NS), face, mask))
        entry = {m: {"psnr": float(np.mean([s[0] for s in v])), "ssim": float(np.mean([s[1] for s in v])),
                     "psnr_wins": None} for m, v in scores.items()}
        flow_psnr = np.array([s[0] for s in scores["flow (MAP)"]])
        for m in methods[1:]:
            entry[m]["psnr_wins"] = float(np.mean(flow_psnr > np.array([s[0] for s in scores[m]])))
        entry["seconds_per_face"] = float(np.median(seconds))
        results["holes"][hole_name] = entry
        print(f"{hole_name}: " + ", ".join(f"{m} PSNR {entry[m]['psnr']:.2f} dB SSIM {entry[m]['ssim']:.3f}" for m in methods)
              + f"; flow {entry['seconds_per_face']:.2f} s/face", flush=True)
    print()
    print("| hole | " + " | ".join(f"{m} PSNR / SSIM" for m in methods) + " | flow s/face |")
    print("|---|" + "---|" * (len(methods) + 1))
    for hole_name, entry in results["holes"].items():
        print(f"| {hole_name} | " + " | ".join(f"{entry[m]['psnr']:.2f} dB / {entry[m]['ssim']:.3f}" for m in methods)
              + f" | {entry['seconds_per_face']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
