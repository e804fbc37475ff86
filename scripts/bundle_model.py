"""Turn a training run's best checkpoint into the bundled face model in assets/models/celeba64.

    python scripts/bundle_model.py RUN_DIR/best --data ../shared/data/celeba64 \
        --method mean-diff --fit-images 12000 --out assets/models/celeba64

Measures and records, on the CelebA validation partition: bits/dim (float32, all validation
images, fixed dequantisation noise), the encode/decode round-trip error, decode latency; fits the
40 attribute directions on training faces; writes the model as float16 safetensors with its
config, sample grids at several temperatures and an edit grid (PNG), and a JSON of the figures
(``card.json``) that MODEL_CARD.md quotes. Nothing is downloaded; the data never enters the repo.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from glowcore import load_model, save_model
from glowcore.data.datasets import load_dataset
from glowcore.ops.directions import add_directions, edit, fit_label_directions
from glowcore.ops.evaluate import evaluate_bits_per_dim
from glowcore.io.grid import save_grid
from glowcore.base.progress import ConsoleProgress

TEMPERATURES = (0.5, 0.7, 0.8, 1.0)
EDIT_SHOW = ("Smiling", "Young", "Male", "Eyeglasses", "Blond_Hair", "Bald")


def write_edits_png(model, path: Path) -> None:
    """The model card's edit grid: two *sampled* faces (real CelebA faces, or their
    reconstructions, never enter the repo) per direction of EDIT_SHOW, amounts -1.5 .. 1.5, edited
    as the explorer edits (each direction's default conditioning and bounds)."""
    base = model.sample_latent(2, 0.6, seed=11)
    amounts = [-1.5, -0.75, 0.0, 0.75, 1.5]
    tiles = []
    for name in EDIT_SHOW:
        if name not in model.directions:
            continue
        for i in range(2):
            edited = edit(model, base[i], {name: amounts})
            tiles.append(model.decode(edited))
    save_grid(torch.cat(tiles), path, ncol=len(amounts), scale=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="model folder, e.g. RUN_DIR/best")
    ap.add_argument("--data", default="../shared/data/celeba64")
    ap.add_argument("--out", default="assets/models/celeba64")
    ap.add_argument("--method", default="mean-diff", choices=["mean-diff", "logistic"])
    ap.add_argument("--scale", type=float, default=1.0, help="direction scale: amount 1.0 = scale x the class-mean distance")
    ap.add_argument("--scales", default=None, help="JSON of per-direction scales ({name: scale} or {method: {name: scale}}), e.g. from benchmarks/edit_check.py")
    ap.add_argument("--fit-images", type=int, default=12000)
    ap.add_argument("--val-images", type=int, default=0, help="0 = the whole validation partition")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--run-dir", default=None, help="the training run (for its metadata); default: the checkpoint's parent")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = load_model(args.checkpoint, device="cpu")
    run_dir = Path(args.run_dir) if args.run_dir else Path(args.checkpoint).resolve().parent
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figures: dict = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads"}
    print(model.describe())

    # ---- validation bits/dim, float32, fixed noise
    val = load_dataset(f"celeba:{args.data}", model.config.image_size, split="val")
    n_val = len(val) if args.val_images <= 0 else min(args.val_images, len(val))
    # (with a learned dequantiser, also the bound under uniform noise, comparable with models without one)
    bar = ConsoleProgress("val bits/dim", unit="images")
    ev = evaluate_bits_per_dim(model, val.images, np.arange(n_val), batch_size=100, progress=bar)
    bar.close()
    learned = ev.uniform_noise is not None
    figures["val_bpd"] = round(ev.bits_per_dim, 4)
    if learned:
        figures["val_bpd_uniform_noise"] = round(ev.uniform_noise, 4)
        print(f"validation under uniform noise: {figures['val_bpd_uniform_noise']:.4f} bits/dim")
    figures["val_images"] = n_val
    figures["n_bits"] = model.config.n_bits
    print(f"validation: {figures['val_bpd']:.4f} bits/dim ({model.config.n_bits}-bit) over {n_val} images")

    # ---- round trip on validation faces (after the float16 cast, as shipped)
    faces = torch.from_numpy(np.array(val.images[:256])).permute(0, 3, 1, 2).float() / 255
    save_model(model, out, dtype=torch.float16)
    shipped = load_model(out, device="cpu")
    back = shipped.decode(shipped.encode(faces))
    figures["round_trip_max_abs_error"] = float((back - faces).abs().max())
    figures["round_trip_images"] = 256
    # the same figure `glow eval` gives for the shipped model (all n_val faces, noise seeded 0)
    figures["val_bpd_float16_weights"] = round(
        evaluate_bits_per_dim(shipped, val.images, np.arange(n_val), batch_size=100, generator=torch.Generator().manual_seed(0)).bits_per_dim, 4
    )
    print(f"round trip: max abs error {figures['round_trip_max_abs_error']:.2e} over 256 validation faces")

    # ---- decode latency (exact float32, and the explorer's fast bf16 networks)
    lat = shipped.sample_latent(1, 0.7, seed=0)
    for key, fast in (("decode_ms", False), ("decode_fast_ms", True)):
        with torch.inference_mode():
            for _ in range(5):
                shipped.decode(lat, fast=fast)
            ts = []
            for _ in range(60):
                t0 = time.perf_counter()
                shipped.decode(lat, fast=fast)
                ts.append(time.perf_counter() - t0)
        ts.sort()
        figures[f"{key}_p50"] = round(statistics.median(ts) * 1e3, 2)
        figures[f"{key}_p95"] = round(ts[int(0.95 * (len(ts) - 1))] * 1e3, 2)
        print(f"decode{' (fast)' if fast else ''}: p50 {figures[f'{key}_p50']} ms, p95 {figures[f'{key}_p95']} ms")

    # ---- attribute directions on training faces
    train = load_dataset(f"celeba:{args.data}", model.config.image_size, split="train")
    n_fit = min(args.fit_images, len(train))
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(train), n_fit, replace=False))
    imgs = np.ascontiguousarray(train.images[idx])
    labels = np.asarray(train.labels[idx])
    vecs, infos = fit_label_directions(
        shipped, imgs, labels, train.label_names, method=args.method, batch_size=64,
        progress=ConsoleProgress("directions", unit="images"), return_info=True,
    )
    scales: dict = {}
    if args.scales:
        scales = json.loads(Path(args.scales).read_text())
        scales = scales.get(args.method, scales)
    for name, info in infos.items():
        info["scale"] = float(scales.get(name, args.scale))
    add_directions(shipped, vecs, infos)
    figures["directions"] = {
        "method": args.method, "fit_images": n_fit, "count": len(vecs),
        "scales": {name: info["scale"] for name, info in infos.items()},
    }

    # ---- metadata, save (float16), pictures
    run = {}
    run_json = run_dir / "run.json"
    if run_json.is_file():
        run = json.loads(run_json.read_text())
    metrics_path = run_dir / "metrics.jsonl"
    last = json.loads(metrics_path.read_text().splitlines()[-1]) if metrics_path.is_file() else {}
    shipped.metadata = {
        "name": "celeba64",
        "metrics": {"val_bpd": figures["val_bpd"], "val_images": n_val, "n_bits": model.config.n_bits,
                    **({"val_bpd_uniform_noise": figures["val_bpd_uniform_noise"]} if learned else {})},
        "training": {**model.metadata.get("training", {}), "run_config": run.get("config", {}), "last_metrics": last},
        "data": "CelebA (aligned, 64x64), train partition of a 42,075-image subset; non-commercial research use only",
    }
    save_model(shipped, out, dtype=torch.float16)
    final = load_model(out, device="cpu")
    rows = [final.sample(8, t, seed=7) for t in TEMPERATURES]
    save_grid(torch.cat(rows), out / "samples.png", ncol=8, scale=2)
    write_edits_png(final, out / "edits.png")
    (out / "card.json").write_text(json.dumps(figures, indent=2) + "\n")
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
