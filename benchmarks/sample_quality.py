"""Sample quality: a Frechet distance between a model's samples and real validation faces, measured
in the feature space of our own attribute classifier (``benchmarks/attr_classifier.py``, trained on
the train partition only), for a table of temperature settings.

Three feature spaces of the classifier, each with FID's formula (Heusel et al., 2017) on it, lower
is better:

* ``flat``: the input of the classifier's linear head, the last block's 4x4x256 map (4,096
  numbers; where the face's parts are and what they look like);
* ``pooled``: that map averaged over space (256 numbers: which attributes, not where);
* ``texture``: the mean and standard deviation of every channel of the first three blocks
  (896 numbers: local texture statistics, where blotchy or noisy skin shows).

The real-vs-real line (train faces against validation faces, as many faces as samples) gives each
space's floor (its finite-sample bias). A Frechet distance mixes fidelity with diversity, so the
table also gives **precision** and **recall** (Kynkaenniemi et al., 2019) in the ``flat`` space:
the share of samples inside the real faces' manifold (each real face's ball reaching its 3rd
nearest real neighbour), and the share of real faces inside the samples' manifold. A setting is ``T`` (every level), ``T1,T2,...`` (one per level, finest first) or ``TC/TD`` (the coarse levels at TC, the finest
half at TD: ``Glow.sample_latent(detail_temperature=TD)``).

    python benchmarks/sample_quality.py celeba64 --samples 2000 --settings 0.7 0.9/0.5 0.8/0.4
    python benchmarks/sample_quality.py runs/x/best --json out.json

Keeps to ``--threads`` CPU threads (default 1: the machine is shared).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_SETTINGS = ["0.5", "0.6", "0.7", "0.8", "1.0", "0.9/0.5", "0.8/0.5", "1.0/0.5", "0.9/0.3", "0.8/0.4", "0.7/0.5", "0.9/0.7"]


def parse_setting(text: str) -> tuple[float | list[float], Optional[float]]:
    """``T`` (every level), ``TC/TD`` (coarse levels, finest half) or ``T1,T2,...`` (one per
    level, finest first)."""
    if "," in text:
        return [float(t) for t in text.split(",")], None
    coarse, _, detail = text.partition("/")
    return float(coarse), (float(detail) if detail else None)


SPACES = ("flat", "pooled", "texture")


@torch.inference_mode()
def features(net, images: np.ndarray | torch.Tensor, batch_size: int = 250) -> dict[str, np.ndarray]:
    """The classifier's features of ``images`` in each of :data:`SPACES`."""
    from attr_classifier import _as_float

    net.eval()
    out: dict[str, list] = {k: [] for k in SPACES}
    for i in range(0, len(images), batch_size):
        x = (_as_float(images[i : i + batch_size]) - 0.5).contiguous(memory_format=torch.channels_last)
        tex = []
        for layer in net.features:
            x = layer(x)
            if isinstance(layer, torch.nn.Sequential) and len(tex) < 6:  # the blocks (after their pooling)
                tex += [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]
        out["flat"].append(x.flatten(1).double().numpy())
        out["pooled"].append(x.mean(dim=(2, 3)).double().numpy())
        out["texture"].append(torch.cat(tex[:6], dim=1).double().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID's formula between two sets of feature vectors (rows)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    r1 = _sqrt_psd(s1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross)


def _knn_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # (the 0 to itself is the first)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaenniemi et al., 2019) between two feature sets (rows)."""
    r, f = torch.from_numpy(real).float(), torch.from_numpy(fake).float()
    rr, rf = _knn_radius(r, k), _knn_radius(f, k)
    precision = (torch.cdist(f, r) <= rr[None, :]).any(dim=1).float().mean()
    recall = (torch.cdist(r, f) <= rf[None, :]).any(dim=1).float().mean()
    return float(precision), float(recall)


def sample_images(model, n: int, temperature: float | list[float], detail: Optional[float], seed: int, batch: int = 100) -> torch.Tensor:
    out = []
    for i, lo in enumerate(range(0, n, batch)):
        out.append(model.sample(min(batch, n - lo), temperature, seed=seed + i, detail_temperature=detail))
    return torch.cat(out)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", default="celeba64")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS, help="T, TC/TD or T1,T2,... (one per level, finest first) (default: a table of 13)")
    p.add_argument("--data", default=None, help="data spec (default: the project's CelebA folder)")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--grid", default=None, help="save a grid of 8 samples per setting here (PNG)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from attr_classifier import default_data_spec, load_or_train

    from glowcore import load_model
    from glowcore.data.datasets import load_dataset
    from glowcore.io.grid import save_grid

    spec = args.data or default_data_spec()
    net, _ = load_or_train(data_spec=spec)
    model = load_model(args.model, device="cpu")
    val = load_dataset(spec, 64, "val")
    train = load_dataset(spec, 64, "train")
    t0 = time.perf_counter()
    ref = features(net, val.images)
    pick = np.sort(np.random.default_rng(0).permutation(len(train))[: args.samples])
    real = features(net, train.images[pick])
    floor = {k: round(frechet_distance(real[k], ref[k]), 3) for k in SPACES}
    pr = precision_recall(ref["flat"], real["flat"])
    rows = [{"setting": "real train faces", "fd": floor, "precision": round(pr[0], 3), "recall": round(pr[1], 3)}]
    print(f"Frechet distances, {args.samples} samples vs {len(val)} validation faces, in the classifier's feature spaces")
    print(f"{'setting':>18}  " + "  ".join(f"{k:>8}" for k in SPACES) + "  precision  recall")
    print(f"{'real train faces':>18}  " + "  ".join(f"{floor[k]:8.3f}" for k in SPACES) + f"  {pr[0]:9.3f}  {pr[1]:6.3f}")
    grid = []
    for s in args.settings:
        t, d = parse_setting(s)
        imgs = sample_images(model, args.samples, t, d, args.seed)
        feats = features(net, imgs)
        fd = {k: round(frechet_distance(feats[k], ref[k]), 3) for k in SPACES}
        pr = precision_recall(ref["flat"], feats["flat"])
        rows.append({"setting": s, "temperature": t, "detail_temperature": d, "fd": fd, "precision": round(pr[0], 3), "recall": round(pr[1], 3)})
        grid.append(imgs[:8])
        print(f"{s:>18}  " + "  ".join(f"{fd[k]:8.3f}" for k in SPACES) + f"  {pr[0]:9.3f}  {pr[1]:6.3f}", flush=True)
        if args.json:  # after every setting: a long run leaves what it measured
            Path(args.json).write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    if args.grid:
        save_grid(torch.cat(grid), args.grid, ncol=8)
    result = {
        "model": str(args.model), "samples": args.samples, "validation_faces": len(val), "rows": rows,
        "cpu": platform.processor() or platform.machine(), "minutes": round((time.perf_counter() - t0) / 60, 1),
        "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
