"""Time of each convolution of a Glow decode at batch 1, float32 against bfloat16, per level.

    python benchmarks/conv_shapes.py [--threads 1] [--hidden 128] [--levels 4] [--image-size 64]
    python benchmarks/conv_shapes.py --threads 2 --model celeba64 --rounds 8

For every level of a 64x64x3 Glow (the coupling network's 3x3, 1x1 and 3x3 convolutions and the
invertible 1x1 convolution), the median time of one call in microseconds, channels-last, for both
dtypes, and the per-level sum. It shows where the bf16 fast path pays off: on the large levels,
where the arithmetic dominates; on the small ones a bf16 call's fixed cost (~30 us) is larger than
a float32 one's (glowcore.nn.coupling.FAST_MIN_PIXELS).

Then the floor of a decode: every convolution of the reverse pass in order (K steps of the four
above per level, plus each split prior's 3x3), in the dtype the fast decode uses (bf16 networks on
levels of >= FAST_MIN_PIXELS pixels, the rest float32), traced and frozen as one TorchScript graph
and timed whole: what one decode costs with nothing but its convolutions (--steps sets K);
``--model celeba64`` times that model's fast decode in alternating rounds, for the share.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Callable

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
    ap.add_argument("--steps", type=int, default=8, help="flow steps per level, for the floor (default 8)")
    ap.add_argument("--model", help="also time this model's fast decode (e.g. celeba64), alternating with the floor")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds of 50 runs for the floor (default 5)")
    ap.add_argument("--fast-min-pixels", type=int, help="bf16 networks from this level size on, for the floor (default: glowcore.nn.coupling.FAST_MIN_PIXELS)")
    ap.add_argument("--prior-hidden", type=int, default=0, help="width of the split priors' networks, for the floor (default 0)")
    args = ap.parse_args()
    if args.model:  # the floor of that model's architecture
        from glowcore.io.checkpoint import read_config

        arch = read_config(args.model)["architecture"]
        args.hidden, args.levels, args.image_size, args.steps = arch["hidden"], arch["levels"], arch["image_size"], arch["steps"]
        args.prior_hidden = arch.get("prior_hidden", 0)
    torch.set_num_threads(args.threads)
    print(f"threads {torch.get_num_threads()}, hidden {args.hidden}, torch {torch.__version__}; microseconds per call (median)")
    print(f"{'level':>5} {'size':>5} {'conv':>18} {'float32':>8} {'bf16':>8}")
    h = args.hidden
    with torch.no_grad():
        for level, (c, size, _) in enumerate(level_shapes(args)):
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
    n_convs, floor = convolutions_only(args)
    print(f"\nthe {n_convs} convolutions of one decode alone (and the fast path's dtype conversions), frozen graph:")
    compare(floor, args.model, args.rounds)


def level_shapes(args: argparse.Namespace) -> list[tuple[int, int, bool]]:
    """(channels, side, has a split prior) of each level's flow, finest first (3 image channels)."""
    shapes, c, size = [], 3, args.image_size
    for level in range(args.levels):
        c, size = c * 4, size // 2
        split = level < args.levels - 1
        shapes.append((c, size, split))
        c = c // 2 if split else c
    return shapes


def convolutions_only(args: argparse.Namespace):
    """(number of convolutions, a function running them) of a decode's convolutions alone, in order, each
    fed by the one before as in the reverse pass (a step's network reads the first half of the
    previous step's output), with the dtype conversions the fast path needs and nothing else."""
    from glowcore.nn.coupling import FAST_MIN_PIXELS

    g = torch.Generator().manual_seed(0)
    h, ph, shapes = args.hidden, args.prior_hidden, level_shapes(args)

    def weight(cout: int, cin: int, k: int, dt: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        w = (torch.randn(cout, cin, k, k, generator=g) / (cin * k * k) ** 0.5).to(dt)
        return w.contiguous(memory_format=torch.channels_last), torch.zeros(cout, dtype=dt)

    levels = []  # top level first, as the reverse pass runs them
    for c, size, split in reversed(shapes):
        net_dt = torch.bfloat16 if size * size >= (FAST_MIN_PIXELS if args.fast_min_pixels is None else args.fast_min_pixels) else torch.float32
        prior = [weight(c, c // 2, 3, torch.float32)] if split else []  # the split prior (and its network)
        if split and ph:
            prior += [weight(ph, c // 2, 3, net_dt), weight(ph, ph, 1, net_dt), weight(c, ph, 3, net_dt)]
        steps = [(weight(h, c // 2, 3, net_dt), weight(h, h, 1, net_dt), weight(c, h, 3, net_dt), weight(c, c, 1, torch.float32))
                 for _ in range(args.steps)]
        levels.append((prior, steps, net_dt))
    n_convs = sum(len(prior) + 4 * len(steps) for prior, steps, _ in levels)

    class Chain(torch.nn.Module):
        def forward(self, *xs: torch.Tensor) -> list[torch.Tensor]:
            outs = []
            for x, (prior, steps, dt) in zip(xs, levels):
                if prior:  # the prior's 3x3 (float32) and, where it has one, its network's three
                    z1 = x[:, : x.shape[1] // 2]
                    p = F.conv2d(z1, prior[0][0], prior[0][1], padding=1)
                    if len(prior) > 1:
                        (w1, b1), (w2, b2), (w3, b3) = prior[1:]
                        a = F.conv2d(F.conv2d(z1.to(dt), w1, b1, padding=1), w2, b2)
                        p = p + F.conv2d(a, w3, b3, padding=1).float()
                    x = x + p
                for (w1, b1), (w2, b2), (w3, b3), (wi, bi) in steps:
                    a = F.conv2d(x[:, : x.shape[1] // 2].to(dt), w1, b1, padding=1)
                    a = F.conv2d(a, w2, b2)
                    a = F.conv2d(a, w3, b3, padding=1).float()
                    x = F.conv2d(a, wi, bi)
                outs.append(x)
            return outs

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's note on list outputs
        xs = tuple(torch.randn(1, c, size, size, generator=g).contiguous(memory_format=torch.channels_last)
                   for c, size, _ in reversed(shapes))
        chain = torch.jit.freeze(torch.jit.trace(Chain().eval(), xs, check_trace=False))
    return n_convs, lambda: chain(*xs)


def compare(floor, model_name: str | None, rounds: int) -> None:
    """Time the floor and (with a model) its fast decode in alternating rounds of 50 runs, so a
    drift of the machine's speed hits both alike; print each round's medians and their ratio."""
    decode: Callable[[], None] | None = None
    if model_name:
        from glowcore import load_model

        model = load_model(model_name, device="cpu").eval()
        latent = model.sample_latent(1, 0.7, seed=1)

        def decode_fast() -> None:
            model.decode(latent, fast=True)

        decode = decode_fast

    def p50_ms(fn) -> float:
        return median_us(fn, runs=50) / 1e3

    rows = []
    with torch.no_grad():
        for r in range(rounds):
            f = p50_ms(floor)
            d = p50_ms(decode) if decode else float("nan")
            rows.append((f, d))
            print(f"round {r + 1}: convolutions alone p50 {f:.2f} ms" + (f", {model_name} fast decode p50 {d:.2f} ms ({f / d:.0%})" if decode else ""))
    fs = sorted(f for f, _ in rows)
    print(f"convolutions alone: median of the rounds {fs[len(fs) // 2]:.2f} ms, fastest round {fs[0]:.2f} ms")
    if decode:
        ds = sorted(d for _, d in rows)
        print(f"fast decode: median of the rounds {ds[len(ds) // 2]:.2f} ms, fastest round {ds[0]:.2f} ms")


if __name__ == "__main__":
    main()
