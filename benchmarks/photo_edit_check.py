"""Does an edit pasted into the full photo still turn the attribute on, as the 64-px edit does?

    nice python benchmarks/photo_edit_check.py --data ../shared/data/celeba_full_sample --n 100

For CelebA originals (178x218), each enlarged x2 and turned by a random angle (+-15 degrees): align,
encode, move along a direction by ``--amount``, decode, paste into the photo. The judge is the
project's attribute classifier (benchmarks/attr_classifier.py, cached). Counted among the faces
the classifier calls "off" before the edit: the share it calls "on" (p > 0.5) for the 64-px
edited decode, and for the photo result cut back out of the composite through the same transform
(what a user sees, at the model's framing).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/celeba_full_sample")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--attributes", nargs="+", default=["Smiling", "Eyeglasses", "Blond_Hair"])
    ap.add_argument("--amount", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mask-power", type=float, default=None, help="the paste mask's shape |x|^p+|y|^p=1 (default: glowcore.ops.paste.MASK_POWER)")
    ap.add_argument("--face-mask", action="store_true", help="paste inside the feathered face mask (spread=False, glow edit --face-mask) instead of the default spread")
    ap.add_argument("--feather", type=float, default=None, help="the paste mask's feather (default: glowcore.ops.paste.FEATHER)")
    args = ap.parse_args()
    import cv2
    import torch

    torch.set_num_threads(1)
    from attr_classifier import load_or_train, predict_proba

    from glowcore import load_model
    from glowcore.ops.align import align, render_face, warp_matrix
    from glowcore.ops.alignnet import invert
    from glowcore.ops.directions import edit
    import glowcore.ops.paste as paste_module
    from glowcore.ops.paste import paste, paste_mask, seam_ratio

    if args.mask_power is not None:
        paste_module.MASK_POWER = args.mask_power
    feather = paste_module.FEATHER if args.feather is None else args.feather
    seams = []

    net, meta = load_or_train()
    names = list(meta["label_names"])
    model = load_model(None)
    rng = np.random.default_rng(args.seed)
    files = sorted((Path(args.data) / "img_align_celeba").glob("*.jpg"))[: args.n]
    counts = {a: {"off_before": 0, "on_64px": 0, "on_photo": 0, "on_detail_64": 0, "on_masked_64": 0} for a in args.attributes}
    from glowcore.base.images import to_uint8
    from glowcore.ops.paste import face_mask

    mask64 = face_mask(model.config.image_size, feather)[..., None]
    skipped = 0
    for f in files:
        orig = np.asarray(Image.open(f).convert("RGB"))
        h, w = orig.shape[:2]
        a = math.radians(rng.uniform(-15, 15))
        r = 2.0 * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        t = np.array([w, h]) - r @ np.array([w / 2, h / 2])
        photo = cv2.warpAffine(orig, warp_matrix(invert(np.hstack([r, t[:, None]]))), (2 * w, 2 * h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        try:
            aligned = align(photo)
        except ValueError:
            skipped += 1
            continue
        z = model.encode(aligned.face[None])
        p0 = predict_proba(net, aligned.face[None])[0]
        with torch.inference_mode():
            recon = model.decode(z)[0]
        for attr in args.attributes:
            k = names.index(attr)
            if p0[k] > 0.5:
                continue
            counts[attr]["off_before"] += 1
            with torch.inference_mode():
                out = model.decode(edit(model, z, {attr: args.amount}))[0]
            counts[attr]["on_64px"] += int(predict_proba(net, out[None])[0, k] > 0.5)
            # where a drop comes from: the photo's own 64-px face plus the change, unmasked and masked
            change = to_uint8(out).astype(np.float32) - to_uint8(recon).astype(np.float32)
            for key, m in (("on_detail_64", 1.0), ("on_masked_64", mask64)):
                face = np.clip(np.rint(aligned.face.astype(np.float32) + m * change), 0, 255).astype(np.uint8)
                counts[attr][key] += int(predict_proba(net, face[None])[0, k] > 0.5)
            composite = paste(aligned, out, recon, photo, feather=feather, spread=not args.face_mask)
            seams.append(seam_ratio(photo, composite, paste_mask(aligned, feather, spread=not args.face_mask)))
            back = render_face(composite, aligned.transform, aligned.size)
            counts[attr]["on_photo"] += int(predict_proba(net, back[None])[0, k] > 0.5)
    res = {"faces": len(files), "no_face": skipped, "amount": args.amount, "mask_power": paste_module.MASK_POWER, "feather": feather, "spread": not args.face_mask,
           "seam_ratio": {"median": round(float(np.nanmedian(seams)), 3), "max": round(float(np.nanmax(seams)), 3)}, "turned_on": {}}
    for attr, c in counts.items():
        n = max(1, c["off_before"])
        res["turned_on"][attr] = {"off_before": c["off_before"], "64px": round(c["on_64px"] / n, 3), "photo": round(c["on_photo"] / n, 3),
                                  "photo_face_plus_change_64": round(c["on_detail_64"] / n, 3),
                                  "photo_face_plus_masked_change_64": round(c["on_masked_64"] / n, 3)}
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
