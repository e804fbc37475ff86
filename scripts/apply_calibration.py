"""Put calibrated attribute directions into a model: the vectors and scales written by
``benchmarks/edit_calibration.py --save-directions FILE`` replace the model's directions of those
names (each with its ``scale`` for positive amounts and ``scale_neg`` for negative ones, and, when
the calibration held other directions fixed (``--ship-variant`` other than ``plain``), its
``fixed`` list: what an edit of it holds fixed by default, ``glowcore.ops.directions.edit``).
Every name in a ``fixed`` list must be a direction of the model (or of the file). ``--bounds FILE``
(from ``benchmarks/edit_bounds.py --json``) sets each direction's ``bounds``: how far an edit may
take a face along it (``glowcore.ops.editing.bounded_amounts``); directions the file does not name
get none. A direction replaced by ``--directions`` loses the bounds it had (they are in units of
its old scale): measure them again (``benchmarks/edit_bounds.py``) and give them with ``--bounds``.

    python scripts/apply_calibration.py assets/models/celeba64 --directions cal.safetensors --out assets/models/celeba64
    python scripts/apply_calibration.py assets/models/celeba64 --bounds bounds.json --out assets/models/celeba64

The model is written as float16 (as the bundled one is) unless ``--dtype float32``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="model folder")
    p.add_argument("--directions", default=None, help="safetensors file from edit_calibration.py --save-directions")
    p.add_argument("--bounds", default=None, help="JSON from benchmarks/edit_bounds.py --json: each direction's bounds (replacing any it had)")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    args = p.parse_args(argv)
    if not args.directions and not args.bounds:
        p.error("give --directions, --bounds or both")

    import torch
    from safetensors import safe_open

    from glowcore import load_model, save_model
    from glowcore.base.limits import check_direction_info
    from glowcore.ops.directions import add_directions

    model = load_model(args.model, device="cpu")
    vecs: dict = {}
    if args.directions:
        with safe_open(args.directions, framework="pt") as f:
            info = json.loads((f.metadata() or {})["info"])
            vecs = {k: f.get_tensor(k) for k in f.keys()}
        dropped = [k for k in vecs if model.direction_info.get(k, {}).get("bounds") and not info[k].get("bounds")]
        add_directions(model, vecs, {k: info[k] for k in vecs})
        if dropped and not args.bounds:
            print(f"note: {', '.join(dropped)} lost their bounds (measured for the old scales); measure them again with benchmarks/edit_bounds.py")
    bounds: dict = {}
    if args.bounds:
        bounds = json.loads(Path(args.bounds).read_text())["bounds"]
        unknown = [k for k in bounds if k not in model.directions]
        if unknown:
            raise SystemExit(f"{args.bounds}: bounds for directions this model does not have: {', '.join(unknown)}")
        for k in model.directions:  # the file's bounds replace the model's (a direction it does not name: none)
            model.direction_info.setdefault(k, {}).pop("bounds", None)
            if k in bounds:
                model.direction_info[k]["bounds"] = [None if v is None else round(float(v), 4) for v in bounds[k]]
        for k in bounds:
            check_direction_info(k, model.direction_info[k], list(model.directions))
    save_model(model, args.out, dtype=getattr(torch, args.dtype))
    for k in vecs:
        held = info[k].get("fixed") or []
        print(f"{k}: scale {info[k]['scale']}, scale_neg {info[k]['scale_neg']}" + (f", holds fixed: {', '.join(held)}" if held else ", alone"))
    for k, b in bounds.items():
        print(f"{k}: bounds {model.direction_info[k]['bounds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
