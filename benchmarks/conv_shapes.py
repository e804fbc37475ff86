"""Time of each convolution of a Glow decode at batch 1, float32 against bfloat16, per level.

    python benchmarks/conv_shapes.py [--threads 1] [--hidden 128] [--levels 4] [--image-size 64]

For every level of a 64x64x3 Glow (the coupling network's 3x3, 1x1 and 3x3 convolutions and the
invertible 1x1 convolution), the median time of one call in microseconds, channels-last, for both
dtypes, and the per-level sum. It shows where the bf16 fast path pays off: on the large levels,
where the arithmetic dominates; on the small ones a bf16 call's fixed cost (~30 us) is larger than
a float32 one's (glowcore.flows.FAST_MIN_PIXELS).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F


def median_us(fn, runs: int = 200) -> float:
    for _ in range(10):
        fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e6)
    ts.sort()
    return ts[len(ts) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--image-size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {torch.get_num_threads()}, hidden {args.hidden}, torch {torch.__version__}; microseconds per call (median)")
    print(f"{'level':>5} {'size':>5} {'conv':>18} {'float32':>8} {'bf16':>8}")
    h, c, size = args.hidden, 3, args.image_size
    with torch.no_grad():
        for level in range(args.levels):
            c, size = c * 4, size // 2
            convs = [(c // 2, h, 3, "net 3x3"), (h, h, 1, "net 1x1"), (h, c, 3, "net out 3x3"), (c, c, 1, "invertible 1x1")]
            sums = [0.0, 0.0]
            for cin, cout, k, name in convs:
                row = []
                for i, dt in enumerate((torch.float32, torch.bfloat16)):
                    x = torch.randn(1, cin, size, size).to(dt).contiguous(memory_format=torch.channels_last)
                    w = torch.randn(cout, cin, k, k).to(dt).contiguous(memory_format=torch.channels_last)
                    b = torch.randn(cout).to(dt)
                    t = median_us(lambda: F.conv2d(x, w, b, padding=k // 2))
                    row.append(t)
                    sums[i] += t
                print(f"{level + 1:>5} {size:>5} {f'{name} {cin}->{cout}':>18} {row[0]:>8.0f} {row[1]:>8.0f}")
            print(f"{level + 1:>5} {size:>5} {'sum':>18} {sums[0]:>8.0f} {sums[1]:>8.0f}")
            if level < args.levels - 1:
                c //= 2


if __name__ == "__main__":
    main()
