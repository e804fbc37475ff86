"""Training throughput (images/s) of the 64x64 Glow configs: forward + backward + Adam, batch 32.

    python benchmarks/train_throughput.py                  # CPU, the two 64x64 configs
    python benchmarks/train_throughput.py --threads 1 --steps 5
    python benchmarks/train_throughput.py --device cuda --steps 50

It times the same step as ``glow train`` (uint8 batch -> dequantised bits/dim -> backward ->
gradient-norm clip -> fused Adam with the on-device NaN/Inf skip), on random uint8 images after
ActNorm initialisation, and prints one line per config. Figures go to docs/training.md with the
machine and the date.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from glowcore import Glow, GlowConfig

CONFIGS = {
    "L4 K8 h128": dict(levels=4, steps=8, hidden=128),
    "L4 K16 h256": dict(levels=4, steps=16, hidden=256),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(name: str, arch: dict, device: torch.device, batch: int, steps: int, warmup: int) -> float:
    torch.manual_seed(0)
    model = Glow(GlowConfig(image_size=64, channels=3, n_bits=5, **arch)).to(device)
    data = torch.randint(0, 256, (batch, 3, 64, 64), dtype=torch.uint8, device=device)
    model.initialize(data)
    model.train()
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=1e-4, fused=True)
    gen = torch.Generator(device=device)

    def step(i: int) -> None:
        gen.manual_seed(i)
        loss = model.bits_per_dim(data, generator=gen).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, 50.0)
        opt.found_inf = (~torch.isfinite(norm)).float()
        opt.step()

    for i in range(warmup):
        step(i)
    sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    sync(device)
    dt = time.perf_counter() - t0
    ips = steps * batch / dt
    print(f"{name:12s} {model.num_parameters():>11,} params  batch {batch}  {dt / steps * 1000:8.1f} ms/step  {ips:8.1f} images/s", flush=True)
    return ips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per config")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--config", choices=list(CONFIGS), action="append", help="only these configs (repeatable)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} thread(s), {platform.processor() or platform.machine()}")
    for name in args.config or list(CONFIGS):
        bench(name, CONFIGS[name], device, args.batch, args.steps, args.warmup)


if __name__ == "__main__":
    main()
