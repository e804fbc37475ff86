"""Speed of the Glow engine on the current device: decode/encode latency of one image, sampling
throughput, training throughput.

    python benchmarks/glow_benchmark.py                       # 64x64, L=4 K=8 hidden=128
    python benchmarks/glow_benchmark.py --steps 16 --hidden 256
    python benchmarks/glow_benchmark.py --model celeba64      # a saved or bundled model
    python benchmarks/glow_benchmark.py --threads 1 --precision bf16

Prints one line per figure; copy them into docs/benchmarks.md with the machine and date.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time

import torch

from glowcore import Glow, GlowConfig, load_model
from glowcore.decoding import compiled


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _percentiles(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    p50 = statistics.median(times)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return p50 * 1e3, p95 * 1e3


def _time(fn, device: torch.device, runs: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return out


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="benchmark a saved model instead of a fresh one")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--coupling", default="affine")
    ap.add_argument("--no-lu", action="store_true")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--runs", type=int, default=100, help="timed decodes/encodes")
    ap.add_argument("--train-steps", type=int, default=6)
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="training precision of the coupling networks")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else (torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    if args.model:
        model = load_model(args.model, device=device)
    else:
        torch.manual_seed(0)
        cfg = GlowConfig(args.image_size, 3, args.levels, args.steps, args.hidden, args.coupling, not args.no_lu, 5)
        model = Glow(cfg).to(device)
        model.initialize(torch.rand(64, 3, args.image_size, args.image_size))
    model.eval()
    c = model.config
    print(f"config: {model.describe()}")
    print(f"device: {device} ({platform.processor() or platform.machine()}), torch {torch.__version__}, threads {torch.get_num_threads()}")

    one = model.sample_latent(1, 0.7, seed=0)
    img = model.decode(one)
    with torch.inference_mode():
        modes = [("", False)]
        if device.type == "cpu":
            from glowcore.nn.coupling import fast_networks_supported

            native = "native bf16" if fast_networks_supported() else "no native bf16 on this CPU"
            modes.append((f", fast (bf16 networks, {native})", True))
        # on the CPU: frozen graphs (the default), then eager Python (glowcore.decoding.compiled)
        ways = [(True, ", frozen graphs"), (False, ", eager (GLOW_NO_JIT=1)")] if device.type == "cpu" else [(True, "")]
        for label, fast in modes:
            for graphs, how in ways:
                compiled.set_enabled(graphs)
                model.decode(one, fast=fast)  # builds the graph / packed weights
                p50, p95 = _percentiles(_time(lambda: model.decode(one, fast=fast), device, args.runs))
                print(f"decode 1 image{label}{how}:   p50 {p50:.2f} ms   p95 {p95:.2f} ms")
        compiled.set_enabled(True)
        p50, p95 = _percentiles(_time(lambda: model.encode(img), device, args.runs))
        print(f"encode 1 image:   p50 {p50:.2f} ms   p95 {p95:.2f} ms")
        t = _time(lambda: model.sample(16, 0.7, seed=1), device, max(5, args.runs // 10), warmup=2)
        print(f"sample batch 16:  {16 / statistics.median(t):.1f} images/s")

    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randint(0, 256, (32, 3, c.image_size, c.image_size), dtype=torch.uint8)

    def step() -> None:
        with autocast(device, args.precision):
            loss = model.bits_per_dim(x).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t = _time(step, device, args.train_steps, warmup=2)
    print(f"train batch 32 ({args.precision}): {32 / statistics.median(t):.1f} images/s (forward + backward + Adam)")


if __name__ == "__main__":
    main()
