"""Do a model's attribute directions work? Fit them two ways, edit unseen faces, judge with our classifier.

For a Glow model folder (default: the training run's best checkpoint):

1. encode ``--fit-faces`` random faces of the CelebA *train* partition and fit one direction per
   attribute with both recipes of :mod:`glowcore.ops.directions`:
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
   * **broken**: *blown up* = NaN/Inf before clamping or more than 1% "wild" pixels (colour jumps
     over 153/255 to both neighbours: the salt-and-pepper squares of an exploding flow);
     *saturated* = more than 30% of the 8-bit values at 0 or 255 where the reconstruction had not.
     Images are decoded as the product decodes them (``Glow.decode``, whose ``glowcore.decoding.stable``
     re-decodes blown-up regions with a damped pass); blow-ups of the raw, exact reverse pass are
     counted too ("raw -> shown");
4. suggest a per-direction scale for amount 1.0: the amount that turns the attribute on for
   ``--target`` (80%) of faces, capped at the largest amount where at most ``--max-broken`` (1%)
   of outputs break, and measure the edit again at that scale; compare the recipes at a matched
   pixel change (``--match-change``);
5. print Markdown tables, write everything to ``--out``/results.json (default
   ``~/.cache/glow-explorer/edit_check``) and PNG grids of a few edited faces (rows: faces;
   columns: amounts -2..2 at the natural scale for Smiling, Young, Male, Eyeglasses, Blond_Hair;
   upscaled x2) -- real validation faces, kept out of the repository.

    python benchmarks/edit_check.py /work/runs/celeba64/best
    python benchmarks/edit_check.py MODEL --fit-faces 4000 --faces 200 --amounts 0.5 1 1.6 2 --attrs Bald Mustache

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
from glowcore.data.datasets import load_dataset  # noqa: E402
from glowcore.ops.directions import add_directions, edit, encode_images, fit_label_directions, project  # noqa: E402
from glowcore.model import Latent  # noqa: E402

DEFAULT_MODEL = "/work/runs/celeba64/best"
DEFAULT_ATTRS = ["Smiling", "Male", "Young", "Eyeglasses", "Blond_Hair", "Black_Hair", "Mouth_Slightly_Open", "Wearing_Lipstick"]
GRID_ATTRS = ["Smiling", "Young", "Male", "Eyeglasses", "Blond_Hair"]
GRID_AMOUNTS = [-2.0, -1.0, 0.0, 1.0, 2.0]
METHODS = ("mean-diff", "logistic")


def _out_dir() -> Path:
    env = os.environ.get("GLOW_EXPLORER_CACHE")
    base = Path(env).expanduser() if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "glow-explorer"
    return base / "edit_check"


@torch.inference_mode()
def decode_checked(model, latent: Latent, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Decode as the product does (``model.decode``: the exact reverse pass, with blown-up regions
    re-decoded by ``glowcore.decoding.stable`` when the model has it) and also return the *raw* reverse
    output (clamped to [0, 1]) and whether it was finite, to count what the stable decoding hid.

    Returns ``(images, raw_images, raw_finite)``; the reverse pass runs once per item (plus the
    damped passes of the blown items).
    """
    try:
        from glowcore.decoding.stable import stable_reverse
    except ImportError:  # an older glowcore: decode is the plain reverse pass
        stable_reverse = None
    imgs, raws, finite = [], [], []
    for i in range(0, latent.batch_size, batch_size):
        part = latent[i : i + batch_size].to(model.device)
        captured: list[torch.Tensor] = []
        original = model.reverse

        def reverse_once(lat: Latent, *args, _orig=original, _cap=captured) -> torch.Tensor:
            out = _orig(lat, *args)
            if not _cap:
                _cap.append(out.detach().clone())
            return out

        model.reverse = reverse_once  # instance attribute: captures the first (exact) pass
        graphs = _graphs_off()  # small batches would run frozen graphs, not model.reverse
        try:
            x = stable_reverse(model, part) if stable_reverse is not None else model.reverse(part)
        finally:
            del model.reverse
            graphs()
        raw = captured[0].float().cpu()
        finite.append(torch.isfinite(raw).flatten(1).all(1).numpy())
        raws.append(torch.nan_to_num(raw + 0.5, nan=0.5, posinf=1.0, neginf=0.0).clamp(0.0, 1.0))
        imgs.append(torch.nan_to_num(x.float().cpu() + 0.5, nan=0.5, posinf=1.0, neginf=0.0).clamp(0.0, 1.0))
    return torch.cat(imgs), torch.cat(raws), np.concatenate(finite)


def _graphs_off():
    """Turn glowcore's frozen decoding graphs off; returns the undo."""
    from glowcore.decoding import compiled

    was = compiled.enabled()
    compiled.set_enabled(False)
    return lambda: compiled.set_enabled(was)


def image_faults(images: torch.Tensor, finite: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image fault measures of decoded images (B, C, H, W) in [0, 1].

    ``wild``: fraction of pixels whose colour jumps by more than 0.6 (153/255) to both their right
    and lower neighbours -- the salt-and-pepper squares of a blown-up flow (real faces and their
    reconstructions stay below 0.001); ``saturated``: fraction of 8-bit channel values at 0 or 255;
    ``nonfinite``: the raw output had NaN/Inf before clamping.
    """
    dx = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().amax(1)[:, :-1, :]
    dy = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().amax(1)[:, :, :-1]
    wild = ((dx > 0.6) & (dy > 0.6)).float().flatten(1).mean(1).numpy()
    q = torch.round(images * 255.0)
    sat = ((q <= 0) | (q >= 255)).float().flatten(1).mean(1).numpy()
    return {"wild": wild, "saturated": sat, "nonfinite": ~finite}


def broken_mask(faults: dict[str, np.ndarray], base: Optional[dict[str, np.ndarray]] = None) -> tuple[np.ndarray, np.ndarray]:
    """``(blown_up, saturated)`` masks: blown up = NaN/Inf or more than 1% wild pixels; saturated =
    more than 30% of the channel values at 0 or 255 where the unedited reconstruction (``base``)
    had at most 30% (a face on a white background is not counted as broken)."""
    blown = faults["nonfinite"] | (faults["wild"] > 0.01)
    sat = faults["saturated"] > 0.3
    if base is not None:
        sat &= base["saturated"] <= 0.3
    return blown, sat & ~blown


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


def _interp(xs: Sequence[float], ys: Sequence[float], x: float) -> Optional[float]:
    """Linear interpolation of ``ys`` at ``x`` over increasing ``xs`` (None outside their range)."""
    if not xs or x < xs[0] or x > xs[-1]:
        return None
    return float(np.interp(x, xs, ys))


class _Judge:
    """Edits the validation latents along one direction and measures the outcome."""

    def __init__(self, model, clf, z_val: Latent, recon: torch.Tensor, d0: np.ndarray, base_faults: dict, names: list[str], key_cols: list[int]) -> None:
        self.model, self.clf, self.z_val, self.recon, self.d0 = model, clf, z_val, recon, d0
        self.base_faults, self.names, self.key_cols = base_faults, names, key_cols

    def measure(self, method: str, attr: str, amount: float, levels: Optional[Sequence[int]] = None) -> dict:
        j = self.names.index(attr)
        has = self.d0[:, j]
        lat = edit(self.model, self.z_val, {f"{method}/{attr}": np.where(has, -amount, amount)}, levels=levels)
        imgs, raw, finite = decode_checked(self.model, lat)
        raw_blown, _ = broken_mask(image_faults(raw, finite))
        finite = np.ones(len(finite), dtype=bool)  # the product's decode is finite by construction (nan_to_num)
        d = ac.predict_proba(self.clf, imgs) > 0.5
        same = d == self.d0
        others_key = [c for c in self.key_cols if c != j]
        per_other = same[:, others_key].mean(0)
        worst = int(np.argmin(per_other))
        blown, sat = broken_mask(image_faults(imgs, finite), self.base_faults)
        return {
            "method": method, "attribute": attr, "amount": float(amount),
            "n_lacking": int((~has).sum()), "n_having": int(has.sum()),
            "on": float(d[~has, j].mean()) if (~has).any() else float("nan"),
            "off": float((~d[has, j]).mean()) if has.any() else float("nan"),
            "pixel_change": float((imgs - self.recon).abs().mean() * 255),
            "keep_key": float(same[:, others_key].mean()),
            "keep_all": float(np.delete(same, j, axis=1).mean()),
            "most_changed": self.names[others_key[worst]], "most_changed_flip": float(1 - per_other[worst]),
            "blown_up": int(blown.sum()), "saturated": int(sat.sum()), "broken": int((blown | sat).sum()),
            "raw_blown_up": int(raw_blown.sum()),
        }


def suggest_scale(rows: list[dict], target: float, max_broken: float) -> dict:
    """Scale (in the recipe's natural units) for amount 1.0: the smallest amount whose 'on' rate
    reaches ``target`` (linear between measured amounts), capped at the largest measured amount
    whose broken share is at most ``max_broken`` and below which no amount exceeded it."""
    rows = sorted(rows, key=lambda r: r["amount"])
    amounts = [r["amount"] for r in rows]
    cap = 0.0
    for r in rows:
        n = r["n_lacking"] + r["n_having"]
        if r["broken"] > max_broken * n:
            break
        cap = r["amount"]
    reach = _interp_amount(amounts, [r["on"] for r in rows], target)
    if cap == 0.0:
        cap = amounts[0]
    scale = min(reach, cap) if reach is not None else cap
    return {"amount_for_target": reach, "cap": cap, "scale": round(float(scale), 2),
            "limited_by": "target" if reach is not None and reach <= cap else ("breakage" if cap < amounts[-1] else "largest amount measured")}


def run_check(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    t_start = time.time()
    log = print
    model = load_model(args.model, device="cpu").eval()
    facts = _model_facts(model, args.model)
    log(f"model {facts['path']}: {facts['architecture']}, step {facts['step']}, val {facts['val_bpd']} bits/dim ({facts['n_bits']}-bit)")
    clf, clf_meta = ac.load_or_train(args.classifier, data_spec=args.data, log=log)
    names = clf_meta["label_names"]
    attrs = list(names) if args.attrs == ["all"] else list(args.attrs)
    for nm in attrs:
        if nm not in names:
            raise SystemExit(f"unknown attribute {nm!r}; CelebA's are: {', '.join(names)}")
    amounts = sorted(set(args.amounts))
    methods = [m for m in METHODS if m in args.methods]

    spec = args.data or ac.default_data_spec()
    train_ds = load_dataset(spec, model.config.image_size, split="train")
    val_ds = load_dataset(spec, model.config.image_size, split="val")
    if list(train_ds.label_names) != list(names):
        raise SystemExit(f"{spec}: its labels differ from the classifier's")
    # Separate generators: the validation faces do not depend on --fit-faces.
    fit_idx = np.sort(np.random.default_rng(args.seed).choice(len(train_ds), size=min(args.fit_faces, len(train_ds)), replace=False))
    val_idx = np.sort(np.random.default_rng(args.seed + 1).choice(len(val_ds), size=min(args.faces, len(val_ds)), replace=False))

    timings: dict[str, float] = {}
    t = time.time()
    z_fit = encode_images(model, np.array(train_ds.images[fit_idx]), batch_size=64)
    timings["encode_fit_s"] = time.time() - t
    log(f"encoded {len(fit_idx)} training faces in {timings['encode_fit_s']:.0f} s")
    y_fit = train_ds.labels[fit_idx][:, [names.index(a) for a in attrs]]
    fitted: dict[str, dict] = {}
    for method in METHODS:  # both are always fitted (cheap); --methods limits the edits
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
    val_labels = val_ds.labels[val_idx].astype(bool)
    t = time.time()
    z_val = model.encode(val_images, batch_size=64)
    recon, _, recon_finite = decode_checked(model, z_val)
    with torch.inference_mode():
        bpd = torch.cat([model.bits_per_dim(val_images[i : i + 64], generator=torch.Generator().manual_seed(i)) for i in range(0, len(val_images), 64)])
    timings["encode_decode_val_s"] = time.time() - t
    facts["check_faces_bpd"] = float(bpd.mean())
    orig = torch.from_numpy(val_images).permute(0, 3, 1, 2).float() / 255.0
    recon_err = float((recon - orig).abs().max() * 255)
    d0 = ac.predict_proba(clf, recon) > 0.5
    base_faults = image_faults(recon, recon_finite)
    base_blown, _ = broken_mask(base_faults)
    latent_acc = {m: {} for m in METHODS}
    for m in METHODS:  # the latent linear classifiers on unseen faces: coordinate sign vs label
        proj = project(model, z_val, [f"{m}/{a}" for a in attrs])
        for a in attrs:
            latent_acc[m][a] = float(((proj[f"{m}/{a}"] > 0) == val_labels[:, names.index(a)]).mean())
    clf_agree = {a: float((d0[:, names.index(a)] == val_labels[:, names.index(a)]).mean()) for a in attrs}
    log(f"{len(val_idx)} validation faces: {facts['check_faces_bpd']:.4f} bits/dim, reconstruction max error {recon_err:.4f}/255, "
        f"{int(base_blown.sum())} blown-up reconstructions, {int((base_faults['saturated'] > 0.3).sum())} with >30% values at 0/255")

    judge = _Judge(model, clf, z_val, recon, d0, base_faults, names, [names.index(a) for a in ac.KEY_ATTRIBUTES if a in names])
    rows: list[dict] = []
    t = time.time()
    for method in methods:
        for a in attrs:
            rows.extend(judge.measure(method, a, amt) for amt in amounts)
            log(f"  {method:9s} {a:20s} done ({time.time() - t:.0f} s)")
    timings["edits_s"] = time.time() - t

    suggestions: dict[str, dict] = {m: {} for m in methods}
    verified: list[dict] = []
    t = time.time()
    for m in methods:
        for a in attrs:
            sug = suggest_scale([r for r in rows if r["method"] == m and r["attribute"] == a], args.target, args.max_broken)
            mine = sorted((r for r in rows if r["method"] == m and r["attribute"] == a), key=lambda r: r["pixel_change"])
            zero = {"on": 0.0, "off": 0.0, "keep_key": 1.0}  # amount 0 changes nothing
            at = {k: _interp([0.0] + [r["pixel_change"] for r in mine], [zero[k]] + [r[k] for r in mine], args.match_change) for k in zero}
            sug["at_matched_change"] = at
            suggestions[m][a] = sug
            if args.verify:
                verified.append(judge.measure(m, a, sug["scale"]))
    timings["verify_s"] = time.time() - t

    grids = make_grids(model, z_val, d0, names, Path(args.out), args.grid_faces, methods) if args.grid_faces > 0 else []
    if args.grid_faces > 0:
        grids += make_grids(model, z_val, d0, names, Path(args.out), args.grid_faces, methods, suggestions)
    timings["total_s"] = time.time() - t_start
    return {
        "model": facts,
        "classifier": {"path": str(args.classifier or ac.default_weights_path()), "val": clf_meta["val"],
                       "mean_val_accuracy": float(np.mean([v["accuracy"] for v in clf_meta["val"].values()])),
                       "train_seconds": clf_meta["train_seconds"], "epochs": clf_meta["epochs"]},
        "settings": {"fit_faces": len(fit_idx), "faces": len(val_idx), "amounts": amounts, "seed": args.seed, "l2": args.l2,
                     "methods": methods, "target": args.target, "max_broken": args.max_broken, "match_change": args.match_change, "threads": args.threads,
                     "data": spec, "command": " ".join(sys.argv)},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "reconstruction_max_error_255": recon_err, "reconstructions_blown_up": int(base_blown.sum()),
        "reconstructions_saturated": int((base_faults["saturated"] > 0.3).sum()),
        "classifier_agreement_with_labels": clf_agree, "latent_classifier_val_accuracy": latent_acc,
        "directions": fitted, "rows": rows, "suggested_scale": suggestions, "verified": verified, "grids": grids, "timings_s": timings,
    }


def make_grids(model, z_val: Latent, d0: np.ndarray, names: list[str], out: Path, n_faces: int, methods: Sequence[str] = METHODS,
               suggestions: Optional[dict] = None) -> list[str]:
    """One PNG per method: rows = faces, column groups = GRID_ATTRS at amounts GRID_AMOUNTS (x2).

    Without ``suggestions`` the amounts are in the recipe's natural units (amount 1.0 = the fitted
    edit vector; ``edit_grid_METHOD.png``); with them, amounts -1 .. 1 of the suggested scale, what
    a slider from -1 to 1 would show if that scale were shipped (``edit_grid_METHOD_suggested.png``).
    """
    from PIL import Image, ImageDraw

    out.mkdir(parents=True, exist_ok=True)
    attrs = [a for a in GRID_ATTRS if f"mean-diff/{a}" in model.directions and (suggestions is None or all(a in suggestions[m] for m in methods))]
    if not attrs:
        return []
    picks: list[int] = []  # a mix: one face without a smile, one smiling, a man, a woman, then the first others
    for attr, want in (("Smiling", False), ("Smiling", True), ("Male", True), ("Male", False)):
        for i in np.flatnonzero(d0[:, names.index(attr)] == want):
            if int(i) not in picks:
                picks.append(int(i))
                break
    picks += [i for i in range(len(d0)) if i not in picks]
    picks = picks[:n_faces]
    s, pad, gap, head = 128, 2, 12, 20
    paths = []
    for method in methods:
        ncol = len(attrs) * len(GRID_AMOUNTS)
        width = ncol * (s + pad) + (len(attrs) - 1) * gap + pad
        canvas = Image.new("RGB", (width, head + len(picks) * (s + pad) + pad), (255, 255, 255))
        draw = ImageDraw.Draw(canvas)
        for gi, a in enumerate(attrs):
            x0 = pad + gi * (len(GRID_AMOUNTS) * (s + pad) + gap)
            if suggestions is None:
                grid_amounts = list(GRID_AMOUNTS)
                draw.text((x0 + 2, 4), f"{method} {a}: " + "  ".join(f"{v:+g}" for v in grid_amounts), fill=(0, 0, 0))
            else:
                sc = suggestions[method][a]["scale"]
                grid_amounts = [v / 2 * sc for v in GRID_AMOUNTS]
                draw.text((x0 + 2, 4), f"{method} {a}, scale {sc:g}: amounts -1 -0.5 0 +0.5 +1", fill=(0, 0, 0))
            for ri, i in enumerate(picks):
                imgs, _, _ = decode_checked(model, edit(model, z_val[i : i + 1], {f"{method}/{a}": grid_amounts}))
                arr = (imgs.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
                for ci in range(len(GRID_AMOUNTS)):
                    canvas.paste(Image.fromarray(arr[ci]).resize((s, s), Image.NEAREST), (x0 + ci * (s + pad), head + pad + ri * (s + pad)))
        stem = f"edit_grid_{method}" + ("" if suggestions is None else "_suggested")
        path, tmp = out / f"{stem}.png", out / f".{stem}.tmp.png"
        canvas.save(tmp, format="PNG")
        os.replace(tmp, path)
        paths.append(str(path))
    return paths


def _pct(x: Optional[float]) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def _row_line(r: dict) -> str:
    return (f"| {r['attribute']} | {r['amount']:g} | {_pct(r['on'])} ({r['n_lacking']}) | {_pct(r['off'])} ({r['n_having']}) | "
            f"{r['pixel_change']:.1f} | {_pct(r['keep_key'])} | {_pct(r['keep_all'])} | {r['most_changed']} ({_pct(r['most_changed_flip'])}) | "
            f"{r['raw_blown_up']} → {r['blown_up']} / {r['saturated']} |")


ROW_HEADER = ("| attribute | amount | on % (n lacking) | off % (n having) | pixel change /255 | keep other key attrs | keep all 39 | "
              "most-changed other key attr (flipped) | blown-up: raw → shown / saturated |\n|---|---:|---:|---:|---:|---:|---:|---|---:|")


def format_report(res: dict) -> str:
    """Markdown tables of a result dict."""
    lines = []
    m, s = res["model"], res["settings"]
    lines.append(f"Model: `{m['path']}` ({m['architecture']}), training step {m['step']}, val {m['val_bpd'] if m['val_bpd'] is None else round(m['val_bpd'], 4)} "
                 f"bits/dim in its metadata; {m['check_faces_bpd']:.4f} bits/dim ({m['n_bits']}-bit) on the {s['faces']} check faces.")
    lines.append(f"Directions fitted on {s['fit_faces']} training faces; edits on {s['faces']} validation faces "
                 f"(reconstruction max error {res['reconstruction_max_error_255']:.4f}/255; reconstructions blown up: {res['reconstructions_blown_up']}, "
                 f"with >30% values at 0/255: {res['reconstructions_saturated']}).")
    lines.append("")
    methods = s.get("methods", list(METHODS))
    for method in methods:
        lines.append(f"**{method}** (natural scale)")
        lines.append("")
        lines.append(ROW_HEADER)
        lines.extend(_row_line(r) for r in res["rows"] if r["method"] == method)
        lines.append("")
    if methods != list(METHODS):
        lines.append("Suggested scales (amount 1.0 = scale x the natural vector):")
        lines.append("")
        for m in methods:
            lines.append(f"{m}: " + ", ".join(f"{a} {v['scale']:.2f}" + ("" if v["limited_by"] == "target" else f" ({v['limited_by']})")
                                            for a, v in res["suggested_scale"][m].items()))
    else:
        lines.append(f"Per direction: vector norm at amount 1.0, latent linear-classifier accuracy on the check faces, outcome at a matched "
                     f"pixel change of {s['match_change']:g}/255 (interpolated), and the suggested scale (amount turning the attribute on for "
                     f"{100 * s['target']:.0f}% of faces, capped where more than {100 * s['max_broken']:g}% of outputs break):")
        lines.append("")
        lines.append("| attribute | norm md / lr | cos | latent acc. md / lr | on @ Δ md / lr | off @ Δ md / lr | keep @ Δ md / lr | scale md | scale lr |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        d, acc, sug = res["directions"], res["latent_classifier_val_accuracy"], res["suggested_scale"]
        for a in d["mean-diff"]:
            md, lr = sug["mean-diff"][a], sug["logistic"][a]

            def sc(v: dict) -> str:
                return f"{v['scale']:.2f}" + ("" if v["limited_by"] == "target" else f" ({v['limited_by']})")

            lines.append(
                f"| {a} | {d['mean-diff'][a]['norm']:.2f} / {d['logistic'][a]['norm']:.2f} | {d['logistic'][a]['cos_to_mean_diff']:.2f} | "
                f"{_pct(acc['mean-diff'][a])} / {_pct(acc['logistic'][a])} | {_pct(md['at_matched_change']['on'])} / {_pct(lr['at_matched_change']['on'])} | "
                f"{_pct(md['at_matched_change']['off'])} / {_pct(lr['at_matched_change']['off'])} | {_pct(md['at_matched_change']['keep_key'])} / "
                f"{_pct(lr['at_matched_change']['keep_key'])} | {sc(md)} | {sc(lr)} |")
    if res["verified"]:
        lines.append("")
        lines.append("Measured at the suggested scales (the amount column is the scale, i.e. what amount 1.0 would do):")
        for method in methods:
            lines.append("")
            lines.append(f"**{method}** at its suggested scale")
            lines.append("")
            lines.append(ROW_HEADER)
            lines.extend(_row_line(r) for r in res["verified"] if r["method"] == method)
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"model folder or file (default {DEFAULT_MODEL})")
    p.add_argument("--data", default=None, help=f"data spec (default {ac.default_data_spec()})")
    p.add_argument("--classifier", type=Path, default=None, help=f"classifier weights (default {ac.default_weights_path()})")
    p.add_argument("--attrs", nargs="+", default=DEFAULT_ATTRS, help="attributes to check ('all' for the 40; default: %(default)s)")
    p.add_argument("--fit-faces", type=int, default=4000, help="training faces the directions are fitted on")
    p.add_argument("--faces", type=int, default=200, help="validation faces edited")
    p.add_argument("--amounts", type=float, nargs="+", default=[1.0, 1.6, 2.0, 3.0], help="amounts in the recipe's natural units (default: %(default)s)")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="recipes to measure (both are fitted)")
    p.add_argument("--l2", type=float, default=1e-2, help="logistic regression ridge strength")
    p.add_argument("--target", type=float, default=0.8, help="'on' rate the suggested scale aims for")
    p.add_argument("--max-broken", type=float, default=0.01, help="largest share of broken outputs the suggested scale may reach")
    p.add_argument("--match-change", type=float, default=6.0, help="pixel change (/255) at which the two recipes are compared")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip measuring at the suggested scales")
    p.add_argument("--grid-faces", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(_out_dir()), help="folder for results.json and the grids (outside the repository)")
    args = p.parse_args(argv)
    res = run_check(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=1))
    scales = {m: {a: v["scale"] for a, v in sug.items()} for m, sug in res["suggested_scale"].items()}
    (out / "suggested_scales.json").write_text(json.dumps(scales, indent=1))
    print()
    print(format_report(res))
    print()
    print(f"results: {out / 'results.json'}; grids: {', '.join(res['grids'])}; total {res['timings_s']['total_s'] / 60:.1f} min "
          f"({', '.join(f'{k} {v:.0f}' for k, v in res['timings_s'].items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
