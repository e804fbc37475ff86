"""Build a compact data pack (glowcore.data.packs) to carry a training set to a GPU machine.

    python scripts/make_datapack.py --data celeba:../shared/data/celeba64 --out .gpu/celeba64.pack --max-mb 48

Validation faces first (``--val-images``, a seeded random choice), then as many training faces as
fit in ``--max-mb`` (a seeded random order), each quantised to ``--n-bits`` and stored as lossless
WebP: nothing a model of that bit depth sees is lost. Train on it with ``--data pack:PATH``
(``glow train`` or ``scripts/gpu_train.py``). Keep packs of licensed data out of the repository
(the folder ``.gpu/`` is meant to be ignored: ``echo /.gpu/ >> .git/info/exclude``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="data spec (celeba:PATH, folder:PATH, ...)")
    p.add_argument("--out", required=True, help="pack file to write (atomically)")
    p.add_argument("--max-mb", type=float, default=60.0, help="size limit in MB (default 60)")
    p.add_argument("--val-images", type=int, default=1000, help="validation images (default 1000)")
    p.add_argument("--n-bits", type=int, default=5, help="bit depth kept (default 5, the bundled model's)")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="encoding threads (default 2)")
    args = p.parse_args(argv)

    from glowcore.data.datasets import DataError
    from glowcore.data.packing import build_pack
    from glowcore.base.progress import ConsoleProgress

    out = Path(args.out)
    try:
        if out.exists() and out.resolve() == Path(args.data.partition(":")[2] or args.data).resolve():
            raise DataError(f"{out}: the pack would overwrite its own data")
        summary = build_pack(args.data, out, max_mb=args.max_mb, val_images=args.val_images, n_bits=args.n_bits,
                             image_size=args.image_size, seed=args.seed, workers=args.workers, progress=ConsoleProgress())
    except (DataError, ValueError) as e:
        print(f"make_datapack: {e}", file=sys.stderr)
        return 2
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
