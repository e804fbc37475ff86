"""Redraw a bundled model's edit grid (``edits.png``, the model card's picture) after its
directions changed, without re-bundling it: ``python scripts/edits_grid.py assets/models/celeba64``
(``--out`` another PNG). The same grid ``scripts/bundle_model.py`` draws."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="model folder")
    p.add_argument("--out", default=None, help="PNG to write (default: MODEL/edits.png)")
    args = p.parse_args(argv)
    import torch

    from bundle_model import write_edits_png
    from glowcore import load_model

    model = load_model(args.model, device="cpu").eval()
    out = Path(args.out) if args.out else Path(args.model) / "edits.png"
    with torch.inference_mode():
        write_edits_png(model, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
