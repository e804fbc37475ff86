"""Decoding far from the data: how many faces blow up, and does Glow.decode repair them?

Fits mean-difference directions for a few CelebA attributes on training faces, edits validation
faces by large amounts and samples at high temperatures, and counts the faces whose *exact* reverse
pass has blown pixels (values below -1 or above 2 for images in [0, 1]); then times Glow.decode,
which re-decodes those regions with a damped reverse pass (glowcore.decoding.stable), and checks that its
output is finite.

    python benchmarks/decode_stability.py --model /work/runs/celeba64/best --faces 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "celeba64"
ATTRIBUTES = ("Smiling", "Male", "Young", "Eyeglasses", "Blond_Hair")


def read_split(root: Path, partition: str, n: int, size: int) -> tuple[list[str], np.ndarray]:
    from PIL import Image

    part = [line.split() for line in (root / "list_eval_partition.txt").read_text().splitlines() if line.strip()]
    names = [name for name, p in part if p == partition][:n]
    imgs = []
    for name in names:
        im = Image.open(root / "img_align_celeba" / name).convert("RGB")
        imgs.append(np.asarray(im if im.size == (size, size) else im.resize((size, size), Image.Resampling.BICUBIC)))
    return names, np.stack(imgs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model (default: bundled)")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--train-faces", type=int, default=3000, help="training faces to fit the directions on")
    p.add_argument("--faces", type=int, default=100, help="validation faces to edit (and samples per temperature)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    from glowcore import load_model
    from glowcore.ops.directions import add_directions, edit, fit_label_directions
    from glowcore.decoding.stable import blown_pixels

    torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu")
    size = model.config.image_size
    root = Path(args.data)
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()
    attr_names = lines[1].split()
    table = {ln.split()[0]: [int(v) for v in ln.split()[1:]] for ln in lines[2:] if ln.strip()}
    train_names, train = read_split(root, "0", args.train_faces, size)
    labels = np.array([[table[n][attr_names.index(a)] for a in ATTRIBUTES] for n in train_names]) > 0
    add_directions(model, fit_label_directions(model, train, labels, list(ATTRIBUTES), batch_size=100))
    _, val = read_split(root, "1", args.faces, size)
    z = model.encode(val)
    with torch.inference_mode():
        err = float((model.decode(z) - torch.from_numpy(val).permute(0, 3, 1, 2) / 255).abs().max()) * 255
    print(f"{model.describe()}\nround trip of {len(val)} validation faces: max error {err:.4f}/255\n")
    print("| case | faces blown by the exact reverse pass | Glow.decode finite | decode time |")
    print("|---|---|---|---|")
    cases = [(f"{a} {amt:+g}", edit(model, z, {a: amt})) for a in ATTRIBUTES for amt in (1.0, 1.6, 3.0, -3.0)]
    cases += [(f"samples T={t:g}", model.sample_latent(len(val), t, seed=0)) for t in (0.7, 1.0, 1.2, 1.5)]
    for name, lat in cases:
        with torch.inference_mode():
            blown = int(blown_pixels(model.reverse(lat)).flatten(1).any(1).sum())
            t = time.perf_counter()
            img = model.decode(lat)
            dt = time.perf_counter() - t
        print(f"| {name} | {blown}/{lat.batch_size} | {bool(torch.isfinite(img).all())} | {dt:.2f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
