"""Do a model's attribute directions work? Fit them two ways, edit unseen faces, judge with our classifier.

For a Glow model folder (default: the training run's best checkpoint):

1. encode ``--fit-faces`` random faces of the CelebA *train* partition and fit one direction per
   attribute with both recipes of :mod:`glowcore.directions`:
   * ``mean-diff`` -- mean encoding of faces with the attribute minus the mean of faces without
     it, over every level (OpenAI's Glow demo). Amount 1.0 = that raw difference vector;
   * ``logistic`` -- the unit normal of a class-balanced L2 logistic regression in latent space
     (InterFaceGAN), scaled by the class-mean distance along it. Amount 1.0 moves a face's
     coordinate along the normal by the same length as the mean difference projects onto it
     (the vector is shorter than mean-diff's: it drops the class-mean difference orthogonal to the
     normal);
2. encode ``--faces`` random faces of the *validation* partition (unseen by the Glow model and by
   the classifier) and, for each attribute and amount a, decode ``z + a*e`` for faces the
   classifier says lack the attribute and ``z - a*e`` for faces that have it;
3. judge the decodes with our own attribute classifier (``benchmarks/attr_classifier.py``):
   * **on %**: faces lacking the attribute that have it after +a;
   * **off %**: faces having it that lose it after -a;
   * **pixel change**: mean |edited - reconstruction| in 0..255 units;
   * **keep %**: how often the classifier's decisions on the *other* key attributes stay as they
     were (attribute preservation; entangled pairs such as Male/Wearing_Lipstick lower it), and
     the most-changed other attribute;
   * **broken**: decodes with NaN/Inf before clamping, or with more than 30% of their 8-bit
     channel values at 0 or 255 (blown-up, black or saturated images);
4. print Markdown tables, suggest a per-direction scale (the amount that turns the attribute on
   for ``--target`` of faces, capped at ``--max-scale``), write everything to ``--out``/results.json
   and PNG grids of a few edited faces (rows: faces; columns: amounts -2..2 for Smiling, Young,
   Male, Eyeglasses, Blond_Hair; upscaled x2) -- real validation faces, kept out of the repository.

    python benchmarks/edit_check.py /work/runs/celeba64/best
    python benchmarks/edit_check.py MODEL --fit-faces 4000 --faces 200 --amounts 0.5 1 1.6 2

One CPU thread, batches of 64. The classifier is trained first (a few minutes) when its cached
weights are missing.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import attr_classifier as ac  # noqa: E402

from glowcore import load_model  # noqa: E402
from glowcore.data import load_dataset  # noqa: E402
from glowcore.directions import add_directions, edit, encode_images, fit_label_directions, project  # noqa: E402
from glowcore.model import Latent  # noqa: E402

DEFAULT_MODEL = "/work/runs/celeba64/best"
GRID_ATTRS = ["Smiling", "Young", "Male", "Eyeglasses", "Blond_Hair"]
GRID_AMOUNTS = [-2.0, -1.0, 0.0, 1.0, 2.0]
METHODS = ("mean-diff", "logistic")


def _out_dir() -> Path:
    env = os.environ.get("GLOW_EXPLORER_CACHE")
    base = Path(env).expanduser() if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "glow-explorer"
    return base / "edit_check"


@torch.inference_mode()
def decode_checked(model, latent: Latent, batch_size: int = 64) -> tuple[torch.Tensor, np.ndarray]:
    """Decode like ``model.decode`` but also report, per item, whether the raw output had NaN/Inf."""
    imgs, finite = [], []
    for i in range(0, latent.batch_size, batch_size):
        x = model.reverse(latent[i : i + batch_size].to(model.device)).float().cpu()
        finite.append(torch.isfinite(x).flatten(1).all(1).numpy())
        imgs.append(torch.nan_to_num(x + 0.5, nan=0.5, posinf=1.0, neginf=0.0).clamp(0.0, 1.0))
    return torch.cat(imgs), np.concatenate(finite)


def broken_mask(images: torch.Tensor, finite: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """Non-finite raw output, or more than ``threshold`` of the 8-bit channel values at 0 or 255."""
    q = torch.round(images * 255.0)
    sat = ((q <= 0) | (q >= 255)).float().flatten(1).mean(1).numpy()
    return (~finite) | (sat > threshold)


def _interp_amount(amounts: Sequence[float], rates: Sequence[float], target: float) -> Optional[float]:
    """Smallest amount where the rate (0 at amount 0, linear between points) reaches ``target``."""
    xs, ys = [0.0] + list(amounts), [0.0] + list(rates)
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if y1 >= target:
            return x1 if y1 == y0 else x0 + (target - y0) * (x1 - x0) / (y1 - y0)
    return None


def _model_facts(model, path: str) -> dict:
    meta = model.metadata or {}
    tr, mt = meta.get("training", {}), meta.get("metrics", {})
    c = model.config
    return {
        "path": str(Path(path).resolve()) if Path(path).exists() else path,
        "architecture": f"{c.image_size}x{c.image_size} L={c.levels} K={c.steps} hidden={c.hidden} {c.coupling} {c.n_bits}-bit",
        "step": tr.get("step"), "epoch": tr.get("epoch"), "elapsed_s": tr.get("elapsed_s"), "saved": tr.get("saved"),
        "val_bpd": mt.get("val_bpd"), "n_bits": c.n_bits, "dim": model.dim,
    }


def run_check(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    t_start = time.time()
    log = print
    model = load_model(args.model, device="cpu").eval()
    facts = _model_facts(model, args.model)
    log(f"model {facts['path']}: {facts['architecture']}, step {facts['step']}, val {facts['val_bpd']} bits/dim ({facts['n_bits']}-bit)")
    clf, clf_meta = ac.load_or_train(args.classifier, data_spec=args.data, log=log)
    names = clf_meta["label_names"]
    col = {nm: j for j, nm in enumerate(names)}
    attrs = list(args.attrs)
    for nm in attrs:
        if nm not in col:
            raise SystemExit(f"unknown attribute {nm!r}; CelebA's are: {', '.join(names)}")

    spec = args.data or ac.default_data_spec()
    train_ds = load_dataset(spec, model.config.image_size, split="train")
    val_ds = load_dataset(spec, model.config.image_size, split="val")
    rng = np.random.default_rng(args.seed)
    fit_idx = np.sort(rng.choice(len(train_ds), size=min(args.fit_faces, len(train_ds)), replace=False))
    val_idx = np.sort(rng.choice(len(val_ds), size=min(args.faces, len(val_ds)), replace=False))

    timings: dict[str, float] = {}
    t = time.time()
    z_fit = encode_images(model, np.array(train_ds.images[fit_idx]), batch_size=64)
    timings["encode_fit_s"] = time.time() - t
    log(f"encoded {len(fit_idx)} training faces in {timings['encode_fit_s']:.0f} s")
    y_fit = train_ds.labels[fit_idx][:, [train_ds.label_names.index(a) for a in attrs]]

    fitted: dict[str, dict] = {}
    for method in METHODS:
        t = time.time()
        vecs, infos = fit_label_directions(model, z_fit, y_fit, attrs, method, l2=args.l2, return_info=True)
        timings[f"fit_{method}_s"] = time.time() - t
        add_directions(model, {f"{method}/{a}": v for a, v in vecs.items()}, {f"{method}/{a}": infos[a] for a in attrs})
        fitted[method] = {a: {"norm": float(vecs[a].norm()), **{k: v for k, v in infos[a].items() if isinstance(v, (int, float, str))}} for a in attrs}
        log(f"fitted {len(attrs)} {method} directions in {timings[f'fit_{method}_s']:.1f} s")
    for a in attrs:
        u, v = model.directions[f"mean-diff/{a}"].double(), model.directions[f"logistic/{a}"].double()
        fitted["logistic"][a]["cos_to_mean_diff"] = float(u @ v / (u.norm() * v.norm()))
    del z_fit

    val_images = np.array(val_ds.images[val_idx])
    val_labels = val_ds.labels[val_idx]
    t = time.time()
    z_val = model.encode(val_images, batch_size=64)
    recon, recon_finite = decode_checked(model, z_val)
    timings["encode_decode_val_s"] = time.time() - t
    orig = torch.from_numpy(val_images).permute(0, 3, 1, 2).float() / 255.0
    recon_err = float((recon - orig).abs().max() * 255)
    p0 = ac.predict_proba(clf, recon)
    d0 = p0 > 0.5
    base_broken = int(broken_mask(recon, recon_finite).sum())
    # The latent linear classifiers on unseen faces: does the coordinate's sign match the label?
    latent_acc = {m: {} for m in METHODS}
    for m in METHODS:
        proj = project(model, z_val, [f"{m}/{a}" for a in attrs])
        for a in attrs:
            latent_acc[m][a] = float(((proj[f"{m}/{a}"] > 0) == val_labels[:, val_ds.label_names.index(a)].astype(bool)).mean())
    clf_agree = {a: float((d0[:, col[a]] == val_labels[:, val_ds.label_names.index(a)].astype(bool)).mean()) for a in attrs}
    log(f"{len(val_idx)} validation faces: reconstruction max error {recon_err:.3f}/255, {base_broken} broken-looking reconstructions")

    key_cols = [col[a] for a in ac.KEY_ATTRIBUTES if a in col]
    rows: list[dict] = []
    t = time.time()
    for method in METHODS:
        for a in attrs:
            j = col[a]
            has = d0[:, j]
            sign = np.where(has, -1.0, 1.0)
            others_key = [c for c in key_cols if c != j]
            others_all = [c for c in range(len(names)) if c != j]
            for amt in args.amounts:
                lat = edit(model, z_val, {f"{method}/{a}": sign * amt})
                imgs, finite = decode_checked(model, lat)
                p = ac.predict_proba(clf, imgs)
                d = p > 0.5
                on = float(d[~has, j].mean()) if (~has).any() else float("nan")
                off = float((~d[has, j]).mean()) if has.any() else float("nan")
                same = d == d0
                keep_key = float(same[:, others_key].mean())
                keep_all = float(same[:, others_all].mean())
                per_other = same[:, others_key].mean(0)
                worst = int(np.argmin(per_other))
                pix = float((imgs - recon).abs().mean() * 255)
                broken = broken_mask(imgs, finite)
                rows.append({
                    "method": method, "attribute": a, "amount": amt, "n_lacking": int((~has).sum()), "n_having": int(has.sum()),
                    "on": on, "off": off, "pixel_change": pix, "keep_key": keep_key, "keep_all": keep_all,
                    "most_changed": names[others_key[worst]], "most_changed_flip": float(1 - per_other[worst]),
                    "broken": int(broken.sum()), "nonfinite": int((~finite).sum()),
                })
            log(f"  {method:9s} {a:20s} done ({time.time() - t:.0f} s)")
    timings["edits_s"] = time.time() - t

    # Suggested scale: the amount where "on" reaches the target, capped.
    suggestions: dict[str, dict] = {m: {} for m in METHODS}
    for m in METHODS:
        for a in attrs:
            rs = [r for r in rows if r["method"] == m and r["attribute"] == a]
            amt = _interp_amount([r["amount"] for r in rs], [r["on"] for r in rs], args.target)
            suggestions[m][a] = {"amount_for_target": amt, "scale": round(min(amt, args.max_scale), 2) if amt is not None else args.max_scale}

    grids = make_grids(model, clf, z_val, d0, col, Path(args.out), args.grid_faces) if args.grid_faces > 0 else []
    timings["total_s"] = time.time() - t_start
    return {
        "model": facts,
        "classifier": {"path": str(args.classifier or ac.default_weights_path()), "val": {a: clf_meta["val"][a] for a in ac.KEY_ATTRIBUTES},
                       "mean_val_accuracy": float(np.mean([v["accuracy"] for v in clf_meta["val"].values()])),
                       "train_seconds": clf_meta["train_seconds"], "epochs": clf_meta["epochs"]},
        "settings": {"fit_faces": len(fit_idx), "faces": len(val_idx), "amounts": list(args.amounts), "seed": args.seed, "l2": args.l2,
                     "target": args.target, "max_scale": args.max_scale, "threads": args.threads, "data": spec},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "reconstruction_max_error_255": recon_err, "reconstructions_broken": base_broken,
        "classifier_agreement_with_labels": clf_agree, "latent_classifier_val_accuracy": latent_acc,
        "directions": fitted, "rows": rows, "suggested_scale": suggestions, "grids": grids, "timings_s": timings,
    }


def make_grids(model, clf, z_val: Latent, d0: np.ndarray, col: dict, out: Path, n_faces: int) -> list[str]:
    """One PNG per method: rows = faces, column groups = GRID_ATTRS at amounts GRID_AMOUNTS (x2)."""
    from PIL import Image, ImageDraw

    out.mkdir(parents=True, exist_ok=True)
    attrs = [a for a in GRID_ATTRS if f"mean-diff/{a}" in model.directions]
    # A mix of faces: first ones that smile and ones that do not, men and women.
    picks: list[int] = []
    for want in ((col["Smiling"], False), (col["Smiling"], True), (col["Male"], True), (col["Male"], False)):
        for i in np.flatnonzero(d0[:, want[0]] == want[1]):
            if int(i) not in picks:
                picks.append(int(i))
                break
    for i in range(len(d0)):
        if len(picks) >= n_faces:
            break
        if i not in picks:
            picks.append(i)
    picks = picks[:n_faces]
    s, pad, gap, head = 128, 2, 12, 20
    paths = []
    for method in METHODS:
        ncol = len(attrs) * len(GRID_AMOUNTS)
        width = ncol * (s + pad) + (len(attrs) - 1) * gap + pad
        height = head + len(picks) * (s + pad) + pad
        canvas = Image.new("RGB", (width, height), (255, 255, 255))
        draw = ImageDraw.Draw(canvas)
        for gi, a in enumerate(attrs):
            x0 = pad + gi * (len(GRID_AMOUNTS) * (s + pad) + gap)
            draw.text((x0 + 2, 4), f"{method} {a}: " + "  ".join(f"{v:+g}" for v in GRID_AMOUNTS), fill=(0, 0, 0))
            for ri, i in enumerate(picks):
                lat = edit(model, z_val[i : i + 1], {f"{method}/{a}": GRID_AMOUNTS})
                imgs, _ = decode_checked(model, lat)
                arr = (imgs.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
                for ci in range(len(GRID_AMOUNTS)):
                    tile = Image.fromarray(arr[ci]).resize((s, s), Image.NEAREST)
                    canvas.paste(tile, (x0 + ci * (s + pad), head + pad + ri * (s + pad)))
        path = out / f"edit_grid_{method}.png"
        tmp = path.with_suffix(".tmp.png")
        canvas.save(tmp, format="PNG")
        os.replace(tmp, path)
        paths.append(str(path))
    return paths


def _pct(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def format_report(res: dict) -> str:
    """Markdown tables of a result dict."""
    lines = []
    m = res["model"]
    lines.append(f"Model: `{m['path']}` ({m['architecture']}), step {m['step']}, val {m['val_bpd']:.4f} bits/dim ({m['n_bits']}-bit)"
                 if m.get("val_bpd") is not None else f"Model: `{m['path']}` ({m['architecture']})")
    s = res["settings"]
    lines.append(f"Directions fitted on {s['fit_faces']} training faces; edits on {s['faces']} validation faces "
                 f"(reconstruction max error {res['reconstruction_max_error_255']:.3f}/255, {res['reconstructions_broken']} broken-looking reconstructions).")
    lines.append("")
    for method in METHODS:
        lines.append(f"**{method}**")
        lines.append("")
        lines.append("| attribute | amount | on % (n) | off % (n) | pixel change /255 | keep other key attrs | keep all 39 | most-changed other (flip) | broken |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---|---:|")
        for r in (r for r in res["rows"] if r["method"] == method):
            lines.append(
                f"| {r['attribute']} | {r['amount']:g} | {_pct(r['on'])} ({r['n_lacking']}) | {_pct(r['off'])} ({r['n_having']}) | "
                f"{r['pixel_change']:.1f} | {_pct(r['keep_key'])} | {_pct(r['keep_all'])} | {r['most_changed']} ({_pct(r['most_changed_flip'])}) | {r['broken']} |"
            )
        lines.append("")
    lines.append("Directions: vector norm (amount 1.0), latent-classifier accuracy on the validation faces, suggested scale "
                 f"(amount that turns the attribute on for {100 * s['target']:.0f}% of faces, capped at {s['max_scale']:g}):")
    lines.append("")
    lines.append("| attribute | mean-diff norm | logistic norm | cos(logistic, mean-diff) | latent acc. mean-diff | latent acc. logistic | scale mean-diff | scale logistic |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    d, acc, sug = res["directions"], res["latent_classifier_val_accuracy"], res["suggested_scale"]
    for a in d["mean-diff"]:
        def sc(mm: str) -> str:
            v = sug[mm][a]
            return f"{v['scale']:.2f}" if v["amount_for_target"] is not None else f">{s['max_scale']:g}"
        lines.append(f"| {a} | {d['mean-diff'][a]['norm']:.2f} | {d['logistic'][a]['norm']:.2f} | {d['logistic'][a]['cos_to_mean_diff']:.2f} | "
                     f"{_pct(acc['mean-diff'][a])} | {_pct(acc['logistic'][a])} | {sc('mean-diff')} | {sc('logistic')} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"model folder or file (default {DEFAULT_MODEL})")
    p.add_argument("--data", default=None, help=f"data spec (default {ac.default_data_spec()})")
    p.add_argument("--classifier", type=Path, default=None, help=f"classifier weights (default {ac.default_weights_path()})")
    p.add_argument("--attrs", nargs="+", default=ac.KEY_ATTRIBUTES)
    p.add_argument("--fit-faces", type=int, default=4000, help="training faces the directions are fitted on")
    p.add_argument("--faces", type=int, default=200, help="validation faces edited")
    p.add_argument("--amounts", type=float, nargs="+", default=[0.5, 1.0, 1.6, 2.0])
    p.add_argument("--l2", type=float, default=1e-2, help="logistic regression ridge strength")
    p.add_argument("--target", type=float, default=0.8, help="'on' rate the suggested scale aims for")
    p.add_argument("--max-scale", type=float, default=2.0)
    p.add_argument("--grid-faces", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(_out_dir()), help="folder for results.json and the grids (outside the repository)")
    args = p.parse_args(argv)
    res = run_check(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=1))
    print()
    print(format_report(res))
    print()
    print(f"results: {out / 'results.json'}; grids: {', '.join(res['grids'])}; total {res['timings_s']['total_s'] / 60:.1f} min "
          f"({', '.join(f'{k} {v:.0f}' for k, v in res['timings_s'].items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
