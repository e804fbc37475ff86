"""Two attempts at attribute edits with less drift, measured out of sample (issue 15): both kept
here, with the figures they gave in docs/edit_check.md, because neither is shipped.

``gated``: **directions that depend on where the face is.** For attribute A and a gate attribute G,
two logistic directions for A, one fitted on the fit faces labelled G, one on those labelled not
G; each face is edited along the one of its group, the group read from its latent (the model's
own G direction, coordinate above 0). Scales per group are chosen on the scale faces, the figures
reported on validation faces. Cases ``A:G`` (``A:-``: one direction fitted on all fit faces, the
control), or ``A:G:KIND0:KIND1`` with KIND ``grp`` (fitted on that group), ``all`` (on every fit
face) or ``allh`` (on every fit face, made orthogonal to G's direction).

``guided``: **conditioning by what a second classifier sees.** The shipped edit vector v of A is
corrected by the other key attributes' plain vectors, ``v' = v - sum_j c_j d_j``, with ``c`` the
least-squares answer to "a *guide* classifier (``benchmarks/attr_classifier.py`` trained with
seed 1: not the judge, which keeps seed 0) sees the other key attributes of each face unchanged"
(secant changes at the edit's own size, per face, on guide faces: train faces used for nothing
else), iterated with the scales chosen (by the judge) on the scale faces in between.

Faces as in ``benchmarks/edit_calibration.py`` (seed 0): fit faces = the first ``--fit`` of the
seeded train order, scale faces the next ``--scale``, guide faces the next ``--guide-faces``;
validation faces ``--reports SKIP:N`` of the seeded validation order (0:300 = the faces the
earlier tables report on, 300:1000 = the fresh ones).

    python benchmarks/edit_experiments.py gated --cases Blond_Hair:Male Blond_Hair:- Eyeglasses:Male Male:Young
    python benchmarks/edit_experiments.py guided --attrs Eyeglasses Male Blond_Hair
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import attr_classifier as ac  # noqa: E402
import edit_calibration as ec  # noqa: E402

from glowcore import load_model  # noqa: E402
from glowcore.data.datasets import load_dataset  # noqa: E402
from glowcore.latent import Latent  # noqa: E402
from glowcore.ops.directions import encode_images, fit_label_directions  # noqa: E402
from glowcore.ops.editing import edit_vector, project  # noqa: E402


class Setup:
    def __init__(self, model_name: str, fit: int, scale: int, extra: int, reports: Sequence[str]) -> None:
        spec = ac.default_data_spec()
        self.judge, _ = ac.load_or_train(data_spec=spec)
        self.model = load_model(model_name, device="cpu").eval()
        self.train = load_dataset(spec, 64, "train")
        val = load_dataset(spec, 64, "val")
        self.names = list(self.train.label_names)
        perm = np.random.default_rng([0, 1]).permutation(len(self.train))
        self.fit_idx = np.sort(perm[:fit])
        self.scale_idx = np.sort(perm[fit : fit + scale])
        self.extra_idx = np.sort(perm[fit + scale : fit + scale + extra])
        vperm = np.random.default_rng([0, 2]).permutation(len(val))
        self.zs = self.enc(self.train.images[self.scale_idx])
        self.ps = ac.predict_proba(self.judge, self.train.images[self.scale_idx])
        self.reps = {}
        for r in reports:
            s, n = map(int, r.split(":"))
            idx = np.sort(vperm[s : s + n])
            self.reps[r] = (self.enc(val.images[idx]), ac.predict_proba(self.judge, val.images[idx]))

    def enc(self, images) -> torch.Tensor:
        return encode_images(self.model, images)

    def probs(self, net, z: torch.Tensor) -> np.ndarray:
        """``net``'s probabilities for the decodes of flat latents ``z`` (as the judge reads edits)."""
        return ec.judge(net, self.model, Latent.from_flat(z, self.model.latent_shapes))

    def rates(self, z: torch.Tensor, p0: np.ndarray, attr: str, delta_on, delta_off) -> dict:
        """On/off rates and drift (as edit_calibration) of adding ``delta_on(idx)`` to the faces
        lacking ``attr`` and ``delta_off(idx)`` (already signed) to those having it."""
        names = self.names
        j = names.index(attr)
        others = [names.index(k) for k in ac.KEY_ATTRIBUTES if k != attr]
        res, drifts = {}, []
        for kind, sel, delta in (("on", p0[:, j] < 0.5, delta_on), ("off", p0[:, j] >= 0.5, delta_off)):
            idx = np.where(sel)[0]
            if len(idx) == 0:
                res[kind] = None
                continue
            p1 = self.probs(self.judge, z[torch.from_numpy(idx)] + delta(idx))
            ok = (p1[:, j] >= 0.5) if kind == "on" else (p1[:, j] < 0.5)
            res[kind] = float(ok.mean())
            drifts.append(np.abs(p1[:, others] - p0[idx][:, others]))
        dd = np.concatenate(drifts)
        res["drift"] = float(dd.mean())
        res["drift_by"] = dict(sorted({names[c]: round(float(x), 3) for c, x in zip(others, dd.mean(0))}.items(), key=lambda kv: -kv[1])[:4])
        return res


def _fmt(r: Optional[float]) -> str:
    return "-" if r is None else f"{r:.3f}"


def gated(args) -> dict:
    S = Setup(args.model, args.fit, args.scale, 0, args.reports)
    model, names = S.model, S.names
    zfit = S.enc(S.train.images[S.fit_idx])
    yfit = np.asarray(S.train.labels[S.fit_idx]) > 0

    def fit_dir(attr: str, mask: np.ndarray) -> torch.Tensor:
        vecs = fit_label_directions(model, zfit[torch.from_numpy(mask)], yfit[mask][:, [names.index(attr)]], [attr], method="logistic", l2=1e-2)
        return vecs[attr].float()

    def orth(v: torch.Tensor, held: Sequence[str]) -> torch.Tensor:
        if not held:
            return v
        q, _ = torch.linalg.qr(torch.stack([model.directions[h].double() for h in held], 1))
        w = v.double() - q @ (q.T @ v.double())
        return (w * (v.double().norm() / w.norm())).float()

    def gate_of(z: torch.Tensor, g: str) -> np.ndarray:
        if g == "-":
            return np.zeros(len(z), bool)
        return project(model, Latent.from_flat(z, model.latent_shapes), [g])[g] > 0

    def group_rates(z, p0, attr, vecs, gate, amt_on, amt_off):
        d = lambda idx, amt, sign: sign * torch.stack([vecs[bool(g)] * amt[bool(g)] for g in gate[idx]])  # noqa: E731
        return S.rates(z, p0, attr, lambda idx: d(idx, amt_on, 1), lambda idx: d(idx, amt_off, -1))

    out = {}
    for case in args.cases:
        attr, g, *kinds = case.split(":")
        if kinds:
            full, gi = fit_dir(attr, np.ones(len(S.fit_idx), bool)), names.index(g)
            make = {"all": lambda gv: full, "allh": lambda gv: orth(full, [g]), "grp": lambda gv: fit_dir(attr, yfit[:, gi] == gv)}
            vecs = {False: make[kinds[0]](False), True: make[kinds[1]](True)}
        elif g == "-":
            v = fit_dir(attr, np.ones(len(S.fit_idx), bool))
            vecs = {False: v, True: v}
        else:
            gi = names.index(g)
            vecs = {gv: fit_dir(attr, yfit[:, gi] == gv) for gv in (False, True)}
        gs = gate_of(S.zs, g)
        s_on, s_off = {}, {}
        for gv in (False, True):
            sel = gs == gv
            if g == "-" and gv:
                s_on[True], s_off[True] = s_on[False], s_off[False]
                continue
            sw = [group_rates(S.zs[torch.from_numpy(sel)], S.ps[sel], attr, vecs, gs[sel], {False: x, True: x}, {False: x, True: x}) for x in args.amounts]
            s_on[gv] = ec._interp(args.amounts, [r["on"] or 0 for r in sw], args.target)
            s_off[gv] = ec._interp(args.amounts, [r["off"] or 0 for r in sw], args.target)
        row = {"scales_on": {str(k): round(v, 3) for k, v in s_on.items()}, "scales_off": {str(k): round(v, 3) for k, v in s_off.items()},
               "in_sample": group_rates(S.zs, S.ps, attr, vecs, gs, s_on, s_off),
               "cos_groups": float(torch.nn.functional.cosine_similarity(vecs[False], vecs[True], 0))}
        for r, (zr, pr) in S.reps.items():
            row[r] = group_rates(zr, pr, attr, vecs, gate_of(zr, g), s_on, s_off)
        out[case] = row
        print(f"{case:<26} scales +{row['scales_on']} / -{row['scales_off']}, cos {row['cos_groups']:.2f} | "
              + " | ".join(f"val {r}: on {_fmt(row[r]['on'])} off {_fmt(row[r]['off'])} drift {row[r]['drift']:.4f} {row[r]['drift_by']}" for r in S.reps), flush=True)
    return out


def _guide(path: Optional[str]):
    p = Path(path) if path else ac.default_weights_path().with_name("attr_guide_seed1.safetensors")
    if not p.exists():
        print(f"training the guide classifier (seed 1) into {p}", flush=True)
        net, meta = ac.train(seed=1, max_minutes=15)
        ac.save(net, meta, p)
    return ac.load(p)[0]


def guided(args) -> dict:
    S = Setup(args.model, 10000, args.scale, args.guide_faces, args.reports)
    model, names = S.model, S.names
    guide = _guide(args.guide)
    zg = S.enc(S.train.images[S.extra_idx])
    pg = ac.predict_proba(guide, S.train.images[S.extra_idx])
    out = {}
    for attr in args.attrs:
        j = names.index(attr)
        info = model.direction_info[attr]
        neg = float(info.get("scale_neg", info.get("scale", 1))) / float(info.get("scale", 1))
        corr = [k for k in ac.KEY_ATTRIBUTES if k != attr and k in model.directions]
        others = [names.index(k) for k in ac.KEY_ATTRIBUTES if k != attr]
        v0 = edit_vector(model, attr).double()
        D = torch.stack([edit_vector(model, k, fixed=()).double() for k in corr])
        lack = torch.from_numpy(np.where(pg[:, j] < 0.5)[0])
        have = torch.from_numpy(np.where(pg[:, j] >= 0.5)[0])
        base_l, base_h = S.probs(guide, zg[lack]), S.probs(guide, zg[have])
        v, c_tot, k_on, k_off = v0.clone(), torch.zeros(len(corr), dtype=torch.float64), 1.0, 1.0

        def seen(vec):  # the guide's per-face changes of the other key attributes
            on = (S.probs(guide, zg[lack] + k_on * vec.float()) - base_l)[:, others]
            off = (S.probs(guide, zg[have] - k_off * neg * vec.float()) - base_h)[:, others]
            return on, off

        for _ in range(args.iters):
            B_on, B_off = seen(v)
            M = [seen(v - d) for d in D]  # the effect of subtracting each d_j
            M_on, M_off = np.stack([m[0] for m in M], 2), np.stack([m[1] for m in M], 2)
            J = np.concatenate([(M_on - B_on[:, :, None]).reshape(-1, len(corr)), (M_off - B_off[:, :, None]).reshape(-1, len(corr))])
            b = np.concatenate([B_on.reshape(-1), B_off.reshape(-1)])
            c_tot += torch.from_numpy(-np.linalg.solve(J.T @ J + args.ridge * len(b) * np.eye(len(corr)), J.T @ b))
            v = v0 - (c_tot[:, None] * D).sum(0)
            sw = [S.rates(S.zs, S.ps, attr, lambda idx, x=x: x * v.float(), lambda idx, x=x: -x * neg * v.float()) for x in args.amounts]
            k_on = ec._interp(args.amounts, [r["on"] for r in sw], args.target)
            k_off = ec._interp(args.amounts, [r["off"] for r in sw], args.target)
        after = np.abs(np.concatenate([x.reshape(-1) for x in seen(v)])).mean()
        res = {"c": dict(zip(corr, c_tot.tolist())), "cos_to_shipped": float(torch.nn.functional.cosine_similarity(v, v0, 0)), "guide_change_after": float(after)}
        for name, vec, kk_on, kk_off in (("shipped", v0, 1.0, neg), ("guided", v, k_on, k_off * neg)):
            row = {"k_on": round(kk_on, 3), "k_off": round(kk_off, 3),
                   "in_sample": S.rates(S.zs, S.ps, attr, lambda idx: kk_on * vec.float(), lambda idx: -kk_off * vec.float())}
            for r, (zr, pr) in S.reps.items():
                row[r] = S.rates(zr, pr, attr, lambda idx: kk_on * vec.float(), lambda idx: -kk_off * vec.float())
            res[name] = row
            print(f"{attr:<11} {name:<8} x{kk_on:.2f} / x{kk_off:.2f} | "
                  + " | ".join(f"val {r}: on {_fmt(row[r]['on'])} off {_fmt(row[r]['off'])} drift {row[r]['drift']:.4f} {row[r]['drift_by']}" for r in S.reps), flush=True)
        out[attr] = res
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    for name in ("gated", "guided"):
        q = sub.add_parser(name)
        q.add_argument("--model", default="celeba64")
        q.add_argument("--scale", type=int, default=400)
        q.add_argument("--reports", nargs="+", default=["0:300"] if name == "gated" else ["0:300", "300:1000"])
        q.add_argument("--target", type=float, default=0.85)
        q.add_argument("--threads", type=int, default=1)
        q.add_argument("--json", default=None)
        if name == "gated":
            q.add_argument("--fit", type=int, default=10000)
            q.add_argument("--cases", nargs="+", default=["Blond_Hair:Male", "Blond_Hair:Male:grp:allh", "Blond_Hair:Male:all:allh", "Blond_Hair:-",
                                                           "Eyeglasses:Male", "Eyeglasses:Young", "Eyeglasses:-", "Male:Young", "Male:-"])
            q.add_argument("--amounts", type=float, nargs="+", default=[0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6])
        else:
            q.add_argument("--attrs", nargs="+", default=["Eyeglasses", "Male", "Blond_Hair"])
            q.add_argument("--guide-faces", type=int, default=300)
            q.add_argument("--guide", default=None, help="the guide classifier's weights (default: trained once into ~/.cache)")
            q.add_argument("--iters", type=int, default=2)
            q.add_argument("--ridge", type=float, default=1e-3)
            q.add_argument("--amounts", type=float, nargs="+", default=[0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3])
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    out = gated(args) if args.what == "gated" else guided(args)
    out["_minutes"] = round((time.perf_counter() - t0) / 60, 1)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
