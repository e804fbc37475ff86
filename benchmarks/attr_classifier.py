"""A small CelebA attribute classifier of our own, the judge of the attribute-direction check.

A compact CNN (a stride-2 stem and three conv-BN-ReLU-maxpool blocks on 64x64 RGB, 32-64-128-256
channels, about 0.5M parameters, 40 sigmoid outputs), trained on the CelebA *train* partition
(``../shared/data/celeba64``) with horizontal flips and, for half the images, uniform noise of one
5-bit bin (so that decodes of a 5-bit Glow, which carry such within-bin texture, are judged like
photos). It never sees the validation partition, where it is measured and where the edit check
(``benchmarks/edit_check.py``) draws its faces.

Weights are cached as safetensors (never pickled, never in the repository) at
``~/.cache/glow-explorer/attr_classifier.safetensors`` (or ``$GLOW_EXPLORER_CACHE/...``), with
the attribute names and the validation figures in the file's metadata; :func:`load_or_train`
retrains when the file is missing or unreadable.

    python benchmarks/attr_classifier.py                 # load (train if missing), print val accuracy
    python benchmarks/attr_classifier.py --retrain --epochs 2

Keeps to one CPU thread (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

DEFAULT_DATA = "celeba:" + str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celeba64")
ARCH = "attrnet-v1"
KEY_ATTRIBUTES = [
    "Smiling", "Male", "Young", "Eyeglasses", "Blond_Hair", "Black_Hair", "Mouth_Slightly_Open",
    "Wearing_Lipstick", "Bald", "Mustache", "Heavy_Makeup", "Pale_Skin",
]


def default_data_spec() -> str:
    """``celeba:<repo>/../shared/data/celeba64`` (the project's data folder), or ``$GLOW_EXPLORER_DATA``."""
    return os.environ.get("GLOW_EXPLORER_DATA", DEFAULT_DATA)


def default_weights_path() -> Path:
    """Where the classifier's safetensors weights are cached (outside the repository)."""
    from glowcore.data.datasets import default_cache_dir

    return default_cache_dir().parent / "attr_classifier.safetensors"  # beside the data cache


class AttrNet(nn.Module):
    """Compact CNN: 64x64x3 in [0, 1] -> 40 logits."""

    def __init__(self, n_out: int = 40, width: int = 32) -> None:
        super().__init__()

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True), nn.MaxPool2d(2))

        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),  # 32x32
            block(w, 2 * w),  # 16x16
            block(2 * w, 4 * w),  # 8x8
            block(4 * w, 8 * w),  # 4x4
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(8 * w * 16, n_out))

    def forward(self, x: Tensor) -> Tensor:
        """``x``: float (B, 3, 64, 64) in [0, 1] -> logits (B, n_out)."""
        x = (x - 0.5).contiguous(memory_format=torch.channels_last)
        return self.head(self.features(x))


def _as_float(images: np.ndarray | Tensor) -> Tensor:
    """uint8 (B, H, W, C) numpy or float (B, C, H, W) tensor in [0, 1] -> float (B, C, H, W)."""
    if isinstance(images, np.ndarray):
        return torch.from_numpy(np.array(images, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0
    return images.float()


@torch.inference_mode()
def predict_proba(net: AttrNet, images: np.ndarray | Tensor, batch_size: int = 256) -> np.ndarray:
    """Attribute probabilities ``(B, 40)`` for uint8 ``(B, H, W, C)`` or float ``(B, C, H, W)`` images."""
    net.eval()
    out = []
    for i in range(0, len(images), batch_size):
        out.append(torch.sigmoid(net(_as_float(images[i : i + batch_size]))).numpy())
    return np.concatenate(out) if out else np.zeros((0, 40), np.float32)


def evaluate(net: AttrNet, images: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per attribute: accuracy, balanced accuracy (mean of TPR and TNR) and the majority-class rate."""
    pred = predict_proba(net, images) > 0.5
    y = labels.astype(bool)
    out = {}
    for j, nm in enumerate(names):
        p, t = pred[:, j], y[:, j]
        tpr = (p & t).sum() / max(1, t.sum())
        tnr = (~p & ~t).sum() / max(1, (~t).sum())
        out[nm] = {
            "accuracy": float((p == t).mean()),
            "balanced": float((tpr + tnr) / 2),
            "majority": float(max(t.mean(), 1 - t.mean())),
        }
    return out


def train(
    data_spec: Optional[str] = None,
    epochs: float = 2.0,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    max_minutes: float = 15.0,
    log=print,
) -> tuple[AttrNet, dict]:
    """Train on the train partition; returns the network and a metadata dict (with val figures)."""
    from glowcore.data.datasets import load_dataset

    spec = data_spec or default_data_spec()
    train_ds = load_dataset(spec, 64, split="train")
    val_ds = load_dataset(spec, 64, split="val")
    names = list(train_ds.label_names)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = AttrNet(len(names)).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    n = len(train_ds)
    total_steps = max(1, int(epochs * n / batch_size))
    labels = torch.from_numpy(train_ds.labels.astype(np.float32))
    t0 = time.time()
    net.train()
    order = rng.permutation(n)
    pos = 0
    loss_avg = None
    step = 0
    for step in range(total_steps):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = np.sort(order[pos : pos + batch_size])
        pos += batch_size
        x = _as_float(train_ds.images[idx])
        flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
        x[flip] = x[flip].flip(-1)
        noisy = torch.from_numpy(rng.random(len(idx)) < 0.5)
        x[noisy] = (x[noisy] + (torch.rand_like(x[noisy]) - 0.5) * (8.0 / 255.0)).clamp(0, 1)
        frac = step / total_steps
        for g in opt.param_groups:  # linear warm-up (100 steps), cosine decay
            g["lr"] = lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * frac))
        loss = nn.functional.binary_cross_entropy_with_logits(net(x), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lv = float(loss.detach())
        loss_avg = lv if loss_avg is None else 0.98 * loss_avg + 0.02 * lv
        if step % 100 == 0 or step == total_steps - 1:
            el = time.time() - t0
            log(f"  step {step + 1}/{total_steps}  loss {loss_avg:.4f}  {(step + 1) * batch_size / max(el, 1e-9):.0f} img/s  {el / 60:.1f} min")
        if time.time() - t0 > max_minutes * 60:
            log(f"  stopping at the {max_minutes:g}-minute limit (step {step + 1}/{total_steps})")
            break
    train_s = time.time() - t0
    net.eval()
    val = evaluate(net, val_ds.images, val_ds.labels, names)
    meta = {
        "arch": ARCH,
        "label_names": names,
        "data": spec,
        "train_images": n,
        "val_images": len(val_ds),
        "steps": step + 1,
        "batch": batch_size,
        "epochs": round((step + 1) * batch_size / n, 3),
        "train_seconds": round(train_s, 1),
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "trained": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "val": val,
    }
    return net, meta


def save(net: AttrNet, meta: dict, path: Path) -> None:
    """Weights as safetensors (atomic), metadata as JSON strings in the file header."""
    from safetensors.torch import save_file

    from glowcore.io.fileio import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"meta": json.dumps(meta)})


def load(path: Path) -> tuple[AttrNet, dict]:
    """Read weights saved by :func:`save` (raises ``ValueError`` naming the file on a bad file)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {}).get("meta", "{}"))
        state = load_file(str(path))
    except Exception as e:  # noqa: BLE001 - any unreadable file is retrained
        raise ValueError(f"{path}: not a readable attribute-classifier file ({e})") from None
    if meta.get("arch") != ARCH:
        raise ValueError(f"{path}: architecture {meta.get('arch')!r}, expected {ARCH!r}")
    net = AttrNet(len(meta["label_names"]))
    net.load_state_dict(state)
    net = net.to(memory_format=torch.channels_last).eval()
    return net, meta


def load_or_train(path: Optional[Path] = None, retrain: bool = False, data_spec: Optional[str] = None, epochs: float = 2.0, log=print) -> tuple[AttrNet, dict]:
    """The cached classifier, trained (and cached) first when missing, unreadable or ``retrain``."""
    path = Path(path) if path is not None else default_weights_path()
    if path.exists() and not retrain:
        try:
            return load(path)
        except ValueError as e:
            log(f"{e}; retraining")
    log(f"training the attribute classifier ({epochs:g} epochs on the CelebA train partition, 1 thread) -> {path}")
    net, meta = train(data_spec, epochs=epochs, log=log)
    save(net, meta, path)
    return net.eval(), meta


def format_accuracy(meta: dict, names: Optional[Sequence[str]] = None) -> str:
    """A Markdown table of the validation figures (key attributes first, then the mean of all 40)."""
    val = meta["val"]
    names = list(names) if names is not None else KEY_ATTRIBUTES
    lines = ["| attribute | val accuracy | balanced accuracy | majority-class rate |", "|---|---:|---:|---:|"]
    for nm in names:
        v = val[nm]
        lines.append(f"| {nm} | {100 * v['accuracy']:.1f}% | {100 * v['balanced']:.1f}% | {100 * v['majority']:.1f}% |")
    acc = np.mean([v["accuracy"] for v in val.values()])
    bal = np.mean([v["balanced"] for v in val.values()])
    maj = np.mean([v["majority"] for v in val.values()])
    lines.append(f"| *mean of all {len(val)}* | {100 * acc:.1f}% | {100 * bal:.1f}% | {100 * maj:.1f}% |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, default=None, help=f"cache file (default {default_weights_path()})")
    p.add_argument("--data", default=None, help=f"data spec (default {default_data_spec()})")
    p.add_argument("--retrain", action="store_true", help="train even when the cached weights exist")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--all", action="store_true", help="print all 40 attributes")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    net, meta = load_or_train(args.weights, args.retrain, args.data, args.epochs)
    print(f"classifier: {meta['steps']} steps ({meta['epochs']} epochs, batch {meta['batch']}) in {meta['train_seconds'] / 60:.1f} min, "
          f"{meta['threads']} thread(s), trained {meta['trained']}")
    print(format_accuracy(meta, meta["label_names"] if args.all else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
