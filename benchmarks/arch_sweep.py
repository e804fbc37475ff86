"""Which 64x64 face architectures fit the explorer's decode budget, and what they cost to train.

For each config: parameters, decode latency of one face (p50, exact float32 and the explorer's
fast bf16 networks) and training throughput (batch 32, bf16 coupling networks, forward + backward
+ Adam) on the current CPU. Prints a Markdown table for docs (the bundled model's card).

    python benchmarks/arch_sweep.py --threads 2
    python benchmarks/arch_sweep.py --configs 4,8,128 4,16,256 --threads 1
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date

import torch

from glowcore import Glow, GlowConfig

DEFAULT_CONFIGS = ["4,8,128", "4,8,96", "4,8,192", "4,12,128", "4,16,128", "4,8,256", "4,16,256", "3,8,128", "4,8,128,additive"]


def _p50_ms(fn, runs: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def measure(levels: int, steps: int, hidden: int, coupling: str, runs: int, train_steps: int) -> dict:
    torch.manual_seed(0)
    model = Glow(GlowConfig(64, 3, levels, steps, hidden, coupling, True, 5))
    model.initialize(torch.rand(64, 3, 64, 64))
    model.eval()
    z = model.sample_latent(1, 0.7, seed=0)
    with torch.inference_mode():
        exact = _p50_ms(lambda: model.decode(z), runs)
        fast = _p50_ms(lambda: model.decode(z, fast=True), runs)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randint(0, 256, (32, 3, 64, 64), dtype=torch.uint8)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model.bits_per_dim(x).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    ms = _p50_ms(step, train_steps, warmup=2)
    return {"params": model.num_parameters(), "decode_ms": exact, "decode_fast_ms": fast, "train_ips": 32 / (ms / 1e3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, help="levels,steps,hidden[,coupling] (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--train-steps", type=int, default=4)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, {date.today().isoformat()}")
    print("| L | K | width | coupling | parameters | decode p50 exact | decode p50 fast | training (bf16) |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|")
    for spec in args.configs:
        parts = spec.split(",")
        levels, steps, hidden = (int(p) for p in parts[:3])
        coupling = parts[3] if len(parts) > 3 else "affine"
        r = measure(levels, steps, hidden, coupling, args.runs, args.train_steps)
        print(
            f"| {levels} | {steps} | {hidden} | {coupling} | {r['params']:,} | {r['decode_ms']:.1f} ms | "
            f"{r['decode_fast_ms']:.1f} ms | {r['train_ips']:.1f} images/s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
