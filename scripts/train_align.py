"""Train the face-alignment network shipped in assets/models/align (glowcore.ops.alignnet.AlignNet).

    nice -n 10 python scripts/train_align.py --data ../shared/data/celeba64 --minutes 20 \
        --out assets/models/align

Data: CelebA's 64x64 aligned faces (their framing is the target). Faces whose identity appears in
``../shared/data/celeba_full_sample`` (the 300 originals the accuracy is measured on) are left out
(``--exclude``). Each sample is a face seen through a random similarity transform Q (window ->
frame: rotation, scale, shift about the frame centre; half of them large, as from the face
detector's box, half small, as in the later refinement steps), with random photometric changes
and a random fill outside the face image (reflected, repeated or flat, so that the network learns
to ignore it); the network predicts Q. Loss: Huber on where Q sends the eyes and mouth.

Nothing of the data is written out: only the weights (float16 safetensors) and a JSON card.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from glowcore.ops.alignnet import FRAME, PARAM_SCALE, REF_POINTS, AlignNet, params_to_matrix, params_to_matrix_torch  # noqa: E402

BORDERS = (cv2.BORDER_REFLECT_101, cv2.BORDER_REPLICATE, cv2.BORDER_CONSTANT)


def load_faces(root: Path, exclude: Path | None, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    names = sorted(p.name for p in (root / "img_align_celeba").glob("*.jpg"))
    if exclude is not None:
        held = {ln.split()[0] for ln in (exclude / "identity_CelebA.txt").read_text().split("\n") if ln.strip()}
        ident = dict(ln.split() for ln in (root / "identity_CelebA.txt").read_text().split("\n") if ln.strip())
        ex_ident = {ln.split()[1] for ln in (exclude / "identity_CelebA.txt").read_text().split("\n") if ln.strip()}
        before = len(names)
        names = [n for n in names if n not in held and ident.get(n) not in ex_ident]
        print(f"left out {before - len(names)} faces of the {len(ex_ident)} measured identities", flush=True)
    rng = np.random.default_rng(seed)
    rng.shuffle(names)
    names = names[:limit]
    arr = np.empty((len(names), FRAME, FRAME, 3), np.uint8)
    for i, n in enumerate(names):
        arr[i] = np.asarray(Image.open(root / "img_align_celeba" / n).convert("RGB"))
    return arr[:-1000], arr[-1000:]


def sample_params(rng: np.random.Generator, n: int) -> np.ndarray:
    big = rng.random(n) < 0.5
    p = np.empty((n, 4))
    p[:, 0] = np.where(big, rng.uniform(-0.6, 0.6, n), rng.normal(0, 0.08, n))  # +-34 deg / 4.6 deg
    p[:, 1] = np.where(big, rng.uniform(-0.35, 0.35, n), rng.normal(0, 0.06, n))
    p[:, 2:] = np.where(big[:, None], rng.uniform(-10, 10, (n, 2)), rng.normal(0, 2.5, (n, 2)))
    return p


def index_matrix(q: np.ndarray) -> np.ndarray:
    """Continuous-coordinate map (dst -> src) as OpenCV's pixel-index map for WARP_INVERSE_MAP."""
    a, t = q[:2, :2], q[:2, 2]
    return np.hstack([a, (a @ np.array([0.5, 0.5]) + t - 0.5)[:, None]])


def make_batch(faces: np.ndarray, rng: np.random.Generator, n: int, augment: bool = True):
    idx = rng.integers(0, len(faces), n)
    params = sample_params(rng, n)
    out = np.empty((n, FRAME, FRAME, 3), np.float32)
    for k in range(n):
        img = faces[idx[k]]
        if augment and rng.random() < 0.5:
            img = img[:, ::-1]
        q = params_to_matrix(*params[k])
        border = BORDERS[rng.integers(0, 3)] if augment else cv2.BORDER_REFLECT_101
        value = tuple(float(v) for v in rng.integers(0, 256, 3))
        w = cv2.warpAffine(np.ascontiguousarray(img), index_matrix(q), (FRAME, FRAME), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border, borderValue=value)
        w = w.astype(np.float32) / 255.0
        if augment:
            if rng.random() < 0.3:
                w = cv2.GaussianBlur(w, (0, 0), rng.uniform(0.3, 1.2))
            if rng.random() < 0.1:
                w = np.repeat(w.mean(2, keepdims=True), 3, 2)
            w = w * rng.uniform(0.6, 1.4) + rng.uniform(-0.2, 0.2) + rng.uniform(-0.05, 0.05, 3)
            w = np.clip(w, 0, 1) ** math.exp(rng.normal(0, 0.25))
            if rng.random() < 0.3:
                w = w + rng.normal(0, rng.uniform(0.005, 0.04), w.shape)
        out[k] = np.clip(w, 0, 1)
    x = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    return x, torch.from_numpy(params).float()


def point_loss(pred: torch.Tensor, target: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    mp, mt = params_to_matrix_torch(pred), params_to_matrix_torch(target)
    pp = torch.einsum("bij,nj->bni", mp[:, :, :2], pts) + mp[:, None, :, 2]
    pt = torch.einsum("bij,nj->bni", mt[:, :, :2], pts) + mt[:, None, :, 2]
    return torch.nn.functional.smooth_l1_loss(pp, pt, beta=0.5)


@torch.no_grad()
def validate(net: AlignNet, faces: np.ndarray, steps: int = 3, seed: int = 1) -> dict:
    """From large perturbations, refine ``steps`` times; eye error (px at 64x64) after each step."""
    net.eval()
    rng = np.random.default_rng(seed)
    params = np.stack([rng.uniform(-0.35, 0.35, len(faces)), rng.uniform(-0.25, 0.25, len(faces)), *rng.uniform(-8, 8, (2, len(faces)))], 1)
    qs = [params_to_matrix(*p) for p in params]  # window -> frame
    eyes = REF_POINTS[:2]
    errs = []
    for _ in range(steps):
        x = np.stack([cv2.warpAffine(faces[k], index_matrix(qs[k]), (FRAME, FRAME), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT_101) for k in range(len(faces))])
        pred = net.predict(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0).numpy().astype(np.float64)
        # the estimate says frame = P(window); the window becomes the estimated frame: q <- q @ P^-1
        qs = [q @ np.linalg.inv(params_to_matrix(*p)) for q, p in zip(qs, pred)]
        e = np.array([np.linalg.norm((eyes @ q[:2, :2].T + q[:2, 2]) - eyes, axis=1).max() for q in qs])
        errs.append(e)
    net.train()
    return {f"step{i + 1}": {"median": float(np.median(e)), "p95": float(np.percentile(e, 95)), "within2": float((e <= 2).mean())} for i, e in enumerate(errs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/celeba64")
    ap.add_argument("--exclude", default="../shared/data/celeba_full_sample", help="leave out the identities of this data set ('' for none)")
    ap.add_argument("--out", default="assets/models/align")
    ap.add_argument("--minutes", type=float, default=22.0)
    ap.add_argument("--steps", type=int, default=6000, help="schedule length (training stops at --minutes if sooner)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--limit", type=int, default=25000, help="faces loaded (memory)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cv2.setNumThreads(1)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    train, val = load_faces(Path(args.data), Path(args.exclude) if args.exclude else None, args.limit, args.seed)
    print(f"{len(train)} training faces, {len(val)} validation faces, loaded in {time.time() - t0:.0f} s", flush=True)
    net = AlignNet()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.steps, pct_start=0.05)
    pts = torch.tensor(np.vstack([REF_POINTS, [[FRAME / 2, FRAME / 2]]]), dtype=torch.float32)
    scale = torch.tensor(PARAM_SCALE)
    t0 = time.time()
    step = 0
    running = 0.0
    while step < args.steps and time.time() - t0 < args.minutes * 60:
        x, p = make_batch(train, rng, args.batch)
        pred = net(x) * scale
        loss = point_loss(pred, p, pts)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        running = 0.98 * running + 0.02 * float(loss.detach()) if step > 1 else float(loss)
        if step % 250 == 0:
            print(f"step {step} loss {running:.4f} lr {sched.get_last_lr()[0]:.2e} {time.time() - t0:.0f} s", flush=True)
        if step % 2000 == 0:
            print("  val", json.dumps(validate(net, val[:300])), flush=True)
    elapsed = time.time() - t0
    result = validate(net, val)
    print("final val", json.dumps(result), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    state = {k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(out / "align.safetensors"), metadata={"format": "glowcore.ops.alignnet.AlignNet"})
    card = {
        "network": "glowcore.ops.alignnet.AlignNet",
        "width": 16,
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "trained_on": "CelebA 64x64 aligned faces (../shared/data/celeba64), identities of celeba_full_sample left out",
        "faces": len(train),
        "steps": step,
        "batch": args.batch,
        "minutes": round(elapsed / 60, 1),
        "seed": args.seed,
        "validation_eye_error_px": result,
        "licence_note": "CelebA: non-commercial research and educational use; the weights carry that provenance",
    }
    (out / "align.json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"wrote {out}/align.safetensors ({(out / 'align.safetensors').stat().st_size // 1024} KB) after {step} steps, {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
