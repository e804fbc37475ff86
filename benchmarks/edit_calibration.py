"""Attribute edits calibrated out of sample: fit on some faces, choose scales on others, report on a third set.

1. **Fit** logistic-regression directions (``glowcore.ops.directions``, InterFaceGAN's recipe) on
   ``--fit-faces`` faces of the CelebA *train* partition.
2. **Choose scales** on ``--scale-faces`` *other* train faces: for each attribute, the amount that
   turns it on for ``--target`` of the faces lacking it (``scale``), and separately the amount
   that turns it off for ``--target`` of the faces having it (``scale_neg``), by linear
   interpolation over ``--amounts``, capped at the largest amount tried.
3. **Report** on ``--report-faces`` faces of the *validation* partition, which neither the
   directions, the scales, the Glow model nor the judge (``benchmarks/attr_classifier.py``,
   trained on the train partition) has seen: at amount 1.0 (+1 on faces lacking the attribute,
   -1 on faces having it), the on and off rates and the drift of the other key attributes (mean
   absolute change of the judge's probability). The scale-choosing faces' figures are printed
   beside them (in-sample for the scales), and the same validation faces edited with the
   directions the model ships (``--baseline``).

Variants (``--variants``): ``plain`` (each direction alone), ``fixed`` (conditional editing,
InterFaceGAN: each edit made orthogonal to the other edited attributes' directions, so that their
coordinates stay), ``key`` (orthogonal to all the other key attributes the drift counts) and any
variant defined with ``--fixed-sets NAME ATTR=SPEC ...``: SPEC is a comma list of direction names
and the words ``edited`` (the other edited attributes), ``key`` (the other key attributes),
``all`` (every other direction of the model) and ``none``, a ``-NAME`` removing one
(``Blond_Hair=key,-Black_Hair``); attributes a definition does not name are held as in ``fixed``. Each (attribute, fixed set) pair is measured once per run.
The directions held fixed that are not edited (``Wearing_Lipstick``, ...) are the model's own
where it has them (``--others-from-model``, the default), so that the figures describe the model
the calibration is applied to.

    python benchmarks/edit_calibration.py celeba64 --json ~/.cache/glow-explorer/edit_calibration.json

Writes a JSON of the figures and the chosen scales (``--json``; with each measurement's drift by
attribute), and with ``--save-directions`` the fitted directions of the edited attributes with the
scales and fixed sets of ``--ship-variant``, which ``scripts/apply_calibration.py`` puts into a
model. ``--directions-cache FILE`` keeps the fitted directions between runs (the fit is a third of
a run). One CPU thread by default.
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
import attr_classifier as ac  # noqa: E402

from glowcore import load_model  # noqa: E402
from glowcore.data.datasets import load_dataset  # noqa: E402
from glowcore.ops.directions import edit, encode_images, fit_label_directions  # noqa: E402
from glowcore.model import Latent  # noqa: E402

EDITED = ["Smiling", "Young", "Male", "Eyeglasses", "Blond_Hair"]
GOALS = {"Smiling": ("on", "off"), "Young": ("on", "off"), "Male": ("on", "off"), "Eyeglasses": ("on",), "Blond_Hair": ("on",)}


@torch.inference_mode()
def judge(net, model, latent: Latent, batch: int = 50) -> np.ndarray:
    """The classifier's probabilities (N, 40) for the decodes of ``latent`` (the fast decoding the
    explorer shows, within a few thousandths of the exact one)."""
    out = []
    for i in range(0, latent.batch_size, batch):
        imgs = model.decode(latent[i : i + batch], fast=True)
        out.append(ac.predict_proba(net, imgs))
    return np.concatenate(out)


def edit_rates(net, model, z: Latent, p0: np.ndarray, names: list[str], attr: str, amount_on: float, amount_off: float,
               fixed: Optional[Sequence[str]], directions_model=None) -> dict:
    """On/off rates and drift of editing ``attr`` by +amount_on (faces lacking it) and
    -amount_off (faces having it); ``fixed=None``: the direction's own default conditioning."""
    m = directions_model or model
    j = names.index(attr)
    others = [names.index(a) for a in ac.KEY_ATTRIBUTES if a != attr and a in names]
    lacking, having = np.where(p0[:, j] < 0.5)[0], np.where(p0[:, j] >= 0.5)[0]
    res: dict = {"n_on": len(lacking), "n_off": len(having)}
    drifts = []
    for kind, idx, amt in (("on", lacking, amount_on), ("off", having, -amount_off)):
        if len(idx) == 0 or amt == 0:
            res[kind] = None
            continue
        lat = edit(m, z[torch.from_numpy(idx)], {attr: amt}, fixed=None if fixed is None else [f for f in fixed if f != attr])
        p1 = judge(net, model, lat)
        res[kind] = float(np.mean(p1[:, j] >= 0.5) if kind == "on" else np.mean(p1[:, j] < 0.5))
        drifts.append(np.abs(p1[:, others] - p0[idx][:, others]))
    if drifts:
        d = np.concatenate(drifts)
        res["drift"] = float(d.mean())
        res["drift_by"] = {names[c]: round(float(v), 4) for c, v in zip(others, d.mean(axis=0))}
    else:
        res["drift"] = None
    return res


def fixed_set(attr: str, spec: str, edited: Sequence[str], key: Sequence[str], every: Sequence[str] = ()) -> list[str]:
    """The directions an edit of ``attr`` holds fixed, from a ``--fixed-sets`` SPEC (``every``:
    the names ``all`` stands for, every direction at hand)."""
    every = list(every) or list(key)
    out: list[str] = []
    for tok in (t.strip() for t in spec.split(",")):
        if not tok or tok == "none":
            continue
        drop = tok.startswith("-")
        word = tok[1:] if drop else tok
        groups = {"edited": edited, "key": key, "all": every}
        group = [a for a in groups[word] if a != attr] if word in groups else [word]
        if word not in groups and word not in every:
            raise SystemExit(f"--fixed-sets: {word!r} is not a direction at hand ({', '.join(every)})")
        out = [a for a in out if a not in group] if drop else out + [a for a in group if a not in out and a != attr]
    return out


def variant_sets(variants: Sequence[str], defs: dict[str, dict[str, str]], edited: Sequence[str], key: Sequence[str],
                 every: Sequence[str] = ()) -> dict[str, dict[str, list[str]]]:
    """``{variant: {attribute: fixed set}}``."""
    builtin = {"plain": "none", "fixed": "edited", "key": "key"}
    out = {}
    for v in variants:
        if v in builtin:
            out[v] = {a: fixed_set(a, builtin[v], edited, key, every) for a in edited}
        elif v in defs:
            out[v] = {a: fixed_set(a, defs[v].get(a, "edited"), edited, key, every) for a in edited}
        else:
            raise SystemExit(f"--variants: {v!r} is neither plain, fixed, key nor defined with --fixed-sets")
    return out


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _interp(amounts: Sequence[float], rates: Sequence[float], target: float) -> float:
    """Smallest amount whose (interpolated) rate reaches ``target``; the largest amount if none does."""
    prev_a, prev_r = 0.0, 0.0
    for a, r in zip(amounts, rates):
        if r >= target:
            if r == prev_r:
                return a
            return prev_a + (a - prev_a) * (target - prev_r) / (r - prev_r)
        prev_a, prev_r = a, r
    return float(amounts[-1])


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", default="celeba64")
    p.add_argument("--data", default=None)
    p.add_argument("--fit-faces", type=int, default=10000)
    p.add_argument("--scale-faces", type=int, default=200)
    p.add_argument("--report-faces", type=int, default=300)
    p.add_argument("--report-skip", type=int, default=0, metavar="N",
                   help="report on validation faces after the first N of the (seeded) order: with N = an earlier run's --report-faces, faces it did not use "
                        "(a fresh check of choices made on its figures)")
    p.add_argument("--amounts", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    p.add_argument("--target", type=float, default=0.85, help="on/off rate the scales aim for on the scale-choosing faces")
    p.add_argument("--target-on", type=float, default=None, help="on rate the scale for adding aims for (default --target)")
    p.add_argument("--l2", type=float, default=1e-2)
    p.add_argument("--variants", nargs="*", default=["plain", "fixed"], help="plain, fixed, key or a name defined with --fixed-sets (none: only the model's own directions, --baseline)")
    p.add_argument("--fixed-sets", nargs="+", action="append", default=[], metavar="NAME ATTR=SPEC",
                   help="define a variant: NAME then ATTR=SPEC for the attributes it holds differently (see the module docstring); repeatable")
    p.add_argument("--attrs", nargs="+", default=EDITED, choices=EDITED, help="edited attributes to measure (default all five)")
    p.add_argument("--others-from-model", action=argparse.BooleanOptionalAction, default=True,
                   help="hold the model's own directions fixed for attributes that are not edited (default), not newly fitted ones")
    p.add_argument("--directions-cache", default=None, metavar="FILE", help="safetensors of the fitted directions: read when it exists, else written")
    p.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True, help="also report the model's own directions")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    p.add_argument("--save-directions", default=None, metavar="FILE",
                   help="also write the fitted directions of the edited attributes (safetensors) with the chosen scales in its metadata")
    p.add_argument("--ship-variant", default="plain", help="whose scales and fixed sets --save-directions records")
    args = p.parse_args(argv)
    defs: dict[str, dict[str, str]] = {}
    for d in args.fixed_sets:
        if len(d) < 2 or any("=" not in x for x in d[1:]) or "=" in d[0]:
            p.error(f"--fixed-sets wants NAME ATTR=SPEC [ATTR=SPEC ...], got {' '.join(d)!r}")
        defs[d[0]] = dict(x.split("=", 1) for x in d[1:])
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()

    spec = args.data or ac.default_data_spec()
    net, _ = ac.load_or_train(data_spec=spec)
    model = load_model(args.model, device="cpu").eval()
    train = load_dataset(spec, model.config.image_size, "train")
    val = load_dataset(spec, model.config.image_size, "val")
    names = list(train.label_names)
    perm = np.random.default_rng([args.seed, 1]).permutation(len(train))
    fit_idx = np.sort(perm[: args.fit_faces])
    scale_idx = np.sort(perm[args.fit_faces : args.fit_faces + args.scale_faces])
    rep_idx = np.sort(np.random.default_rng([args.seed, 2]).permutation(len(val))[args.report_skip : args.report_skip + args.report_faces])
    print(f"fit {len(fit_idx)} train faces, choose scales on {len(scale_idx)} other train faces, report on {len(rep_idx)} validation faces"
          + (f" (after the first {args.report_skip})" if args.report_skip else ""), flush=True)

    key = [a for a in dict.fromkeys(EDITED + ac.KEY_ATTRIBUTES) if a in names]
    cols = [names.index(a) for a in key]
    vecs: dict = {}
    infos: dict = {}
    fitted, sets = None, {}
    if args.variants:  # (none: only the model's own directions are measured, nothing is fitted)
        cache = Path(args.directions_cache) if args.directions_cache else None
        if cache is not None and cache.exists():
            from safetensors import safe_open

            with safe_open(str(cache), framework="pt") as f:
                meta = json.loads((f.metadata() or {})["info"])
                if meta.get("_fit") != {"fit_faces": args.fit_faces, "seed": args.seed, "l2": args.l2, "model": str(args.model)}:
                    raise SystemExit(f"{cache} holds directions of another fit ({meta.get('_fit')}); remove it or give another file")
                vecs = {k: f.get_tensor(k) for k in f.keys()}
            infos = {k: meta[k] for k in vecs}
            print(f"directions read from {cache}", flush=True)
        else:
            z_fit = encode_images(model, train.images[fit_idx])
            vecs, infos = fit_label_directions(model, z_fit, train.labels[fit_idx][:, cols], key, method="logistic", l2=args.l2, return_info=True)
            del z_fit
            if cache is not None:
                from safetensors.torch import save_file

                save_file({k: v.contiguous() for k, v in vecs.items()}, str(cache), metadata={"info": json.dumps(
                    {**infos, "_fit": {"fit_faces": args.fit_faces, "seed": args.seed, "l2": args.l2, "model": str(args.model)}})})
        fitted = load_model(args.model, device="cpu")  # a copy holding the newly fitted directions
        own = {k: (fitted.directions[k], fitted.direction_info.get(k, {})) for k in fitted.directions if k not in EDITED}
        fitted.directions.clear()
        fitted.direction_info.clear()
        from glowcore.ops.directions import add_directions

        add_directions(fitted, vecs, infos)
        if args.others_from_model and own:  # the held-fixed attributes that are not edited: the model's own directions (all of them)
            add_directions(fitted, {k: v for k, (v, _) in own.items()}, {k: {kk: vv for kk, vv in i.items() if kk != "fixed"} for k, (_, i) in own.items()})
        sets = variant_sets(args.variants, defs, EDITED, key, list(fitted.directions))
        print(f"{len(vecs)} directions fitted on the fit faces ({time.perf_counter() - t0:.0f} s); the others held fixed: "
              f"{'the model' if args.others_from_model and own else 'newly fitted'}'s", flush=True)

    z_scale = Latent.from_flat(encode_images(model, train.images[scale_idx]), model.latent_shapes)
    z_rep = Latent.from_flat(encode_images(model, val.images[rep_idx]), model.latent_shapes)
    p_scale = ac.predict_proba(net, train.images[scale_idx])
    p_rep = ac.predict_proba(net, val.images[rep_idx])

    result: dict = {"model": str(args.model), "fit_faces": len(fit_idx), "scale_faces": len(scale_idx), "report_faces": len(rep_idx), "report_skip": args.report_skip,
                    "target": args.target, "target_on": args.target_on, "amounts": args.amounts, "variants": {}, "fixed_sets": sets,
                    "others_from_model": bool(args.others_from_model), "argv": list(sys.argv[1:] if argv is None else argv), "cpu": platform.processor() or platform.machine(),
                    "date": datetime.now(timezone.utc).isoformat(timespec="minutes")}
    done: dict = {}  # (attribute, fixed set) -> row: each pair measured once
    for variant in args.variants:
        rows = {}
        for attr in args.attrs:
            fixed = sets[variant][attr]
            k = (attr, tuple(sorted(fixed)))
            if k not in done:
                sweep = [edit_rates(net, model, z_scale, p_scale, names, attr, a, a, fixed, fitted) for a in args.amounts]
                s_on = _interp(args.amounts, [r["on"] or 0.0 for r in sweep], args.target if args.target_on is None else args.target_on)
                s_off = _interp(args.amounts, [r["off"] or 0.0 for r in sweep], args.target)
                ins = edit_rates(net, model, z_scale, p_scale, names, attr, s_on, s_off, fixed, fitted)
                out = edit_rates(net, model, z_rep, p_rep, names, attr, s_on, s_off, fixed, fitted)
                done[k] = {"fixed": fixed, "scale": round(s_on, 3), "scale_neg": round(s_off, 3), "sweep": sweep, "in_sample": ins, "out_of_sample": out}
            row = rows[attr] = done[k]
            ins, out = row["in_sample"], row["out_of_sample"]
            top = sorted(out["drift_by"].items(), key=lambda kv: -kv[1])[:3]
            print(f"{variant:>6} {attr:<12} scale +{row['scale']:.2f} / -{row['scale_neg']:.2f}: in-sample on {_pct(ins['on'])} off {_pct(ins['off'])} drift {ins['drift']:.3f}; "
                  f"validation on {_pct(out['on'])} off {_pct(out['off'])} drift {out['drift']:.3f} ({', '.join(f'{a} {v:.3f}' for a, v in top)}); "
                  f"fixed: {','.join(fixed) or '-'}  ({time.perf_counter() - t0:.0f} s)", flush=True)
        result["variants"][variant] = rows
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.baseline:
        base = {}
        for attr in args.attrs:
            if attr in model.directions:
                base[attr] = edit_rates(net, model, z_rep, p_rep, names, attr, 1.0, 1.0, None)  # as it ships (its default conditioning)
                b = base[attr]
                top = sorted(b["drift_by"].items(), key=lambda kv: -kv[1])[:3]
                held = model.direction_info.get(attr, {}).get("fixed") or []
                print(f"shipped {attr:<12} validation on {_pct(b['on'])} of {b['n_on']} off {_pct(b['off'])} of {b['n_off']} drift {b['drift']:.4f} "
                      f"({', '.join(f'{a} {v:.3f}' for a, v in top)}); holds fixed: {len(held)} directions", flush=True)
        result["shipped_directions"] = base
    if args.save_directions and args.ship_variant in result["variants"]:
        from safetensors.torch import save_file

        rows = result["variants"][args.ship_variant]
        meta = {a: {**{k: v for k, v in infos[a].items() if isinstance(v, (int, float, str))},
                    "scale": rows[a]["scale"], "scale_neg": rows[a]["scale_neg"],
                    **({"fixed": rows[a]["fixed"]} if rows[a]["fixed"] else {}),
                    # the boundary in units of the scaled vector (glowcore.ops.directions.project)
                    "center": infos[a]["center"] / rows[a]["scale"],
                    "calibration": f"scales chosen out of sample: {len(scale_idx)} train faces not used to fit (target {args.target:.0%}"
                                   + (f", {args.target_on:.0%} for adding" if args.target_on is not None else "") + ")"}
                for a in args.attrs}
        save_file({a: vecs[a].contiguous() for a in args.attrs}, args.save_directions, metadata={"info": json.dumps(meta)})
    result["minutes"] = round((time.perf_counter() - t0) / 60, 1)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
