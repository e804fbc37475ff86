"""How much drift the judge would report for a *perfect* edit: one that changes the edited
attribute and nothing else a label records.

The edit check (``benchmarks/edit_calibration.py``) scores drift as the mean absolute change of
the judge's probability for the other key attributes. But the judge (``attr_classifier.py``)
learned CelebA's correlations: shown a real man who wears lipstick, it does not say "lipstick" as
it does for a woman. So part of the drift it reports is its own. This script measures that part
on real validation faces, with no model and no edit:

- for each sex, the judge's recall (share of faces labelled with an attribute that it reads as
  having it) and false positives, per key attribute;
- for an edit of attribute A, the estimated drift of a perfect edit: each face is compared with
  the real faces of the edit's outcome (A flipped) that share its labels for the attribute read
  and for sex (``A`` itself when A is Male), ``|p(face) - mean p(those faces)|``, averaged as the
  edit check averages (faces lacking A edited on, faces having A edited off; the other 11 key
  attributes). The same comparison with A *not* flipped is printed beside it: what the estimator
  gives for no change at all (faces differ from their cell's mean); the difference is the judge's
  part, the drift it would report for an edit that changed nothing but A;
- the estimated "on" rate of a perfect edit: the judge's recall of A on each sex, weighted by the
  sex mix of the faces lacking A.

    python benchmarks/drift_floor.py --attrs Male Blond_Hair Smiling --json floor.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import attr_classifier as ac  # noqa: E402

MIN_CELL = 5  # fewer real faces than this in a cell: its estimate is left out (and counted)


def perfect_edit_drift(p: np.ndarray, y: np.ndarray, names: Sequence[str], attr: str, flip: bool = True) -> dict:
    """Estimated drift of a perfect edit of ``attr`` (``flip=False``: of no edit), per other key
    attribute and in the mean, from judge probabilities ``p`` and labels ``y`` (both (N, 40))."""
    a = names.index(attr)
    sex = names.index("Male")
    by: dict[str, float] = {}
    left_out = 0
    for b_name in ac.KEY_ATTRIBUTES:
        if b_name == attr or b_name not in names:
            continue
        b = names.index(b_name)
        gaps = []
        for i in range(len(y)):
            target = (y[:, a] != y[i, a]) if flip else (y[:, a] == y[i, a])
            cell = target & (y[:, b] == y[i, b])
            if a != sex and b != sex:
                cell &= y[:, sex] == y[i, sex]
            cell[i] = False
            if cell.sum() < MIN_CELL:
                left_out += 1
                continue
            gaps.append(abs(p[i, b] - p[cell, b].mean()))
        by[b_name] = float(np.mean(gaps)) if gaps else float("nan")
    return {"drift": float(np.nanmean(list(by.values()))), "by": {k: round(v, 4) for k, v in by.items()}, "left_out": left_out}


def perfect_edit_on_rate(p: np.ndarray, y: np.ndarray, names: Sequence[str], attr: str) -> Optional[float]:
    """Estimated "on" rate of a perfect edit of ``attr`` (a face lacking it gets it, its sex kept):
    the judge's recall of ``attr`` on real faces of each sex, weighted by the sex mix of the faces
    lacking it. None for Male (the edit changes sex)."""
    a, sex = names.index(attr), names.index("Male")
    if a == sex:
        return None
    lacking = ~y[:, a]
    rate, total = 0.0, 0
    for s in (False, True):
        having = (y[:, sex] == s) & y[:, a]
        k = int((lacking & (y[:, sex] == s)).sum())
        if k and having.any():
            rate += k * float(np.mean(p[having, a] >= 0.5))
            total += k
    return rate / total if total else None


def judge_by_sex(p: np.ndarray, y: np.ndarray, names: Sequence[str]) -> dict:
    """Per key attribute and sex: labelled faces, the judge's recall and false-positive rate."""
    sex = names.index("Male")
    out = {}
    for b_name in ac.KEY_ATTRIBUTES:
        if b_name == "Male":
            continue
        b = names.index(b_name)
        row = {}
        for label, sel in (("women", ~y[:, sex]), ("men", y[:, sex])):
            pos, neg = sel & y[:, b], sel & ~y[:, b]
            row[label] = {"labelled": int(pos.sum()), "recall": float(np.mean(p[pos, b] >= 0.5)) if pos.any() else None,
                          "false_pos": float(np.mean(p[neg, b] >= 0.5)) if neg.any() else None}
        out[b_name] = row
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="data spec (default: the project's CelebA folder)")
    p.add_argument("--attrs", nargs="+", default=["Smiling", "Young", "Male", "Eyeglasses", "Blond_Hair"])
    p.add_argument("--faces", type=int, default=0, help="validation faces to use (0: all)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from glowcore.data.datasets import load_dataset

    spec = args.data or ac.default_data_spec()
    net, _ = ac.load_or_train(data_spec=spec)
    val = load_dataset(spec, 64, "val")
    names = list(val.label_names)
    n = len(val) if args.faces <= 0 else min(args.faces, len(val))
    y = np.asarray(val.labels[:n]) > 0
    with torch.inference_mode():
        prob = ac.predict_proba(net, np.asarray(val.images[:n]))
    bad = [a for a in args.attrs if a not in names]
    if bad:
        p.error(f"--attrs: {', '.join(bad)} not among the labels")

    table = judge_by_sex(prob, y, names)
    print(f"the judge on {n} real validation faces, by sex: labelled / recall / false positives")
    def fmt(x: Optional[float], spec: str) -> str:
        return "-" if x is None else format(x, spec)

    for b, row in table.items():
        cells = "   ".join(f"{s}: {r['labelled']:5d} / {fmt(r['recall'], '.2f')} / {fmt(r['false_pos'], '.3f')}" for s, r in row.items())
        print(f"{b:>20}  {cells}")
    results = {}
    print("\na perfect edit, estimated: its on rate, its drift (mean over the other key attributes), the same estimator with no edit")
    for a in args.attrs:
        flip, null = perfect_edit_drift(prob, y, names, a), perfect_edit_drift(prob, y, names, a, flip=False)
        top = sorted(flip["by"], key=lambda k: -(flip["by"][k] - null["by"][k]))[:3]
        on = perfect_edit_on_rate(prob, y, names, a)
        results[a] = {"perfect": flip, "no_edit": null, "on_rate_perfect": on}
        print(f"{a:>20}  on {fmt(on, '.0%'):>4}   perfect {flip['drift']:.3f}   no edit {null['drift']:.3f}   judge's part {flip['drift'] - null['drift']:+.3f}   "
              f"largest: " + ", ".join(f"{k} {flip['by'][k]:.2f} (vs {null['by'][k]:.2f})" for k in top))
    if args.json:
        Path(args.json).write_text(json.dumps({"faces": n, "judge_by_sex": table, "edits": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
