"""Train a Glow on a CUDA GPU from a compact data pack for a fixed number of minutes, then measure it.

One command for a machine with an NVIDIA GPU (build the pack first with scripts/make_datapack.py)::

    python scripts/gpu_train.py --pack celeba64.pack --init-from celeba64 --minutes 6 --out runs/gpu

What it does, in order, against one deadline:

1. a short A/B of a training step with and without channels-last memory layout (bf16 autocast),
   which also fails fast if anything is wrong with the machine;
2. ``glow train``'s own training loop (``glowcore.training.train.train``: atomic checkpoints, exact resume,
   Polyak-averaged weights) for a probe of ``--probe-minutes`` at the peak learning rate, which
   measures the images/s;
3. the same run resumed with a cosine decay that ends exactly when the minutes are spent;
4. measurements of the best (averaged) checkpoint: validation bits/dim (the pack's validation
   faces), decode latency at batch 1 and 64, the explorer engine's slider -> picture path on the
   GPU, and optionally the decode of a paper-size random-weight model (``--paper-model``).

Every file it writes stays under 16 MiB (the trainer state is split into shards). The report goes
to stdout and, with ``--report PATH``, to a JSON file. Without a CUDA GPU it stops with one line,
unless ``--allow-cpu`` is given (a slow CPU run, for testing the script on a tiny configuration).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pack", required=True, help="data pack (scripts/make_datapack.py)")
    p.add_argument("--out", required=True, help="run folder (must not hold a run)")
    p.add_argument("--init-from", default="celeba64", help="starting model (default: the bundled celeba64); 'none' trains from scratch")
    p.add_argument("--minutes", type=float, default=6.0, help="training minutes in all, probe included (default 6)")
    p.add_argument("--probe-minutes", type=float, default=0.5, help="minutes at the peak rate that measure images/s (default 0.5)")
    p.add_argument("--batch", type=int, default=None, help="images per step (default: 256 on a GPU with >= 40 GB, else 128; 16 on the CPU)")
    p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (default 3e-4)")
    p.add_argument("--lr-min", type=float, default=1e-5, help="learning rate at the end (default 1e-5)")
    p.add_argument("--warmup", type=int, default=200, help="warm-up steps (default 200)")
    p.add_argument("--ema", type=float, default=0.999, help="Polyak averaging decay (default 0.999)")
    p.add_argument("--eval-minutes", type=float, default=1.0, help="evaluate and checkpoint every N minutes (default 1)")
    p.add_argument("--val-images", type=int, default=1000, help="validation images per evaluation (default 1000)")
    p.add_argument("--hflip", action=argparse.BooleanOptionalAction, default=True, help="mirror half the images (default on)")
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16", help="coupling networks under autocast (default bf16)")
    p.add_argument("--scratch-arch", default="levels=4,steps=8,hidden=128,prior_hidden=64,dequant_hidden=32",
                   help="architecture with --init-from none (key=value,...)")
    p.add_argument("--paper-model", action="store_true", help="also time the decode of a 256x256 L=6 K=32 width-512 model (random weights)")
    p.add_argument("--allow-cpu", action="store_true", help="run on the CPU when no CUDA GPU is present (for tests)")
    p.add_argument("--report", default=None, help="also write the report as JSON here")
    p.add_argument("--export", default=None, help="copy the best model's files and the run's log and latest samples into this folder")
    p.add_argument("--seed", type=int, default=0)
    return p


def _timed(fn: Callable[[], object], sync: Callable[[], None], reps: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _summary(ms: list[float]) -> dict:
    s = sorted(ms)
    return {"p50_ms": round(statistics.median(s), 3), "p95_ms": round(s[min(len(s) - 1, int(0.95 * len(s)))], 3), "n": len(s)}


def channels_last_ab(model, images, batch: int, precision: str, steps: int, sync) -> dict:
    """ms per training step of ``model`` (a copy is used) with and without channels-last."""
    import copy

    import torch

    out = {}
    x = torch.from_numpy(images[:batch]).permute(0, 3, 1, 2).to(model.device)
    for name in ("contiguous", "channels_last"):
        m = copy.deepcopy(model)
        if name == "channels_last":
            m = m.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-6)
        ac = torch.autocast(m.device.type, dtype=torch.bfloat16) if precision == "bf16" else torch.autocast(m.device.type, enabled=False)

        def step() -> None:
            with ac:
                loss = m.bits_per_dim(x).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        ms = _timed(step, sync, steps, warmup=3)
        out[name] = round(statistics.median(ms), 3)
    return out


def measure_decode(model, sync, batch_sizes=(1, 64), reps: int = 30) -> dict:
    import torch

    res = {}
    for b in batch_sizes:
        lat = model.sample_latent(b, 0.7, seed=1)
        with torch.inference_mode():
            res[f"batch{b}"] = _summary(_timed(lambda: model.decode(lat), sync, reps))
    return res


def measure_engine(model_path: str, device: str, sync, reps: int = 40) -> dict:
    """The explorer's slider -> picture path (edit + decode + uint8 on the host), on ``device``."""
    import numpy as np

    from explorer.engine import Engine
    from explorer.state import FaceRef, Snapshot

    eng = Engine(device=device)
    info = eng.open_model(model_path)
    names = [d.name for d in info.directions][:4]
    if len(names) < 4:
        return {"error": f"{model_path} has {len(names)} directions; the scenarios need 4"}
    face = FaceRef.from_seed(3)
    out = {}
    amounts_cycle = np.linspace(-2.0, 2.0, 21)
    i = [0]

    def one(far: bool) -> None:
        a = float(amounts_cycle[i[0] % len(amounts_cycle)])
        i[0] += 1
        amounts = ((names[0], a),) if not far else tuple((n, 3.0) for n in names[1:4]) + ((names[0], a),)
        eng.render(Snapshot(face=face, temperature=0.7, amounts=amounts))

    out["one_slider"] = _summary(_timed(lambda: one(False), sync, reps))
    out["three_far_plus_drag"] = _summary(_timed(lambda: one(True), sync, reps))
    out["device"] = eng.device_label()
    return out


def measure_paper_model(device, sync, reps: int = 10) -> dict:
    import torch

    from glowcore import Glow, GlowConfig

    cfg = GlowConfig(image_size=256, channels=3, levels=6, steps=32, hidden=512, coupling="affine", lu=True, n_bits=5)
    torch.manual_seed(0)
    m = Glow(cfg).to(device).eval()
    with torch.no_grad():  # data-dependent ActNorm from one random batch, as training would
        m.initialize(torch.randint(0, 256, (4, 3, 256, 256), dtype=torch.uint8, device=device))
    n_params = sum(p.numel() for p in m.parameters())
    lat = m.sample_latent(1, 0.7, seed=0)
    with torch.inference_mode():
        t = _summary(_timed(lambda: m.decode(lat), sync, reps, warmup=2))
    return {"params_M": round(n_params / 1e6, 1), "decode_batch1": t}


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    import torch

    from glowcore import load_model
    from glowcore.data.datasets import load_dataset
    from glowcore.data.packs import pack_info
    from glowcore.training.train import TrainConfig, train

    t_start = time.monotonic()
    report: dict = {"argv": sys.argv[1:], "python": platform.python_version(), "torch": torch.__version__}

    def write_report() -> None:
        text = json.dumps(report, indent=2)
        if args.report:
            Path(args.report).write_text(text + "\n", encoding="utf-8")

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t_start:6.1f}s] {msg}", flush=True)

    if torch.cuda.is_available():
        device = "cuda"
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        props = torch.cuda.get_device_properties(0)
        report["gpu"] = {"name": props.name, "memory_GB": round(props.total_memory / 1e9, 1)}
        sync = torch.cuda.synchronize
        batch = args.batch or (256 if props.total_memory >= 40e9 else 128)
    elif args.allow_cpu:
        device = "cpu"
        sync = lambda: None  # noqa: E731
        batch = args.batch or 16
        report["gpu"] = None
    else:
        print("gpu_train: no CUDA GPU found (torch.cuda.is_available() is False); add --allow-cpu to run on the CPU (slow)", file=sys.stderr)
        return 2
    log(f"device {device} {report['gpu']}, batch {batch}")
    out = Path(args.out)
    info = pack_info(args.pack)
    report["pack"] = {"path": str(args.pack), "counts": info["counts"], "n_bits": info["n_bits"]}

    base = dict(
        data=f"pack:{args.pack}", out=str(out), batch=batch, lr=args.lr, warmup=args.warmup, ema=args.ema,
        eval_minutes=args.eval_minutes, val_images=args.val_images, eval_batch=250 if device == "cuda" else 50,
        hflip=args.hflip, precision=args.precision, device=device, seed=args.seed, samples=8,
    )
    if args.init_from.lower() != "none":
        base["init_from"] = args.init_from
    else:
        for kv in args.scratch_arch.split(","):
            k, v = kv.split("=")
            base[k.strip()] = int(v)

    # -- 1. channels-last A/B (and a fail-fast check of the whole training step)
    start_model = load_model(args.init_from if args.init_from.lower() != "none" else None, device=device) if "init_from" in base else None
    val = load_dataset(f"pack:{args.pack}", None, "val")
    if start_model is not None:
        ab = channels_last_ab(start_model, val.images, min(batch, len(val)), args.precision, steps=10 if device == "cuda" else 2, sync=sync)
        report["train_step_ms"] = ab
        channels_last = ab["channels_last"] < 0.97 * ab["contiguous"]
        log(f"training step: {ab} ms -> channels_last={channels_last}")
        del start_model
    else:
        channels_last = False
    base["channels_last"] = channels_last
    write_report()

    # -- 2. probe at the peak rate
    probe = min(args.probe_minutes, args.minutes / 4)
    res = train(TrainConfig(**base, max_minutes=probe, eval_steps=None), log=log)
    ips = res.metrics[-1]["images_per_s"] if res.metrics else 0.0
    report["probe"] = {"steps": res.step, "images_per_s": ips, "val_bpd": res.val_bpd}
    write_report()

    # -- 3. the rest of the minutes, cosine-decayed to lr_min exactly at the end
    left_s = args.minutes * 60 - (time.monotonic() - t_start)
    if left_s > 3 and ips > 0:
        more = max(1, int(left_s * ips / batch * 0.92))
        cfg = TrainConfig(**base, lr_schedule="cosine", lr_min=args.lr_min, decay_start=res.step, max_steps=res.step + more,
                          max_minutes=left_s / 60)
        res = train(cfg, resume=True, log=log)
    metrics = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    report["training"] = {
        "steps": res.step, "images_seen": res.images_seen, "best_val_bpd": res.best_val_bpd,
        "images_per_s": [m["images_per_s"] for m in metrics],
        "val_bpd": [(m["step"], m["val_bpd"], m.get("val_bpd_uniform_noise")) for m in metrics],
        "minutes": round((time.monotonic() - t_start) / 60, 2),
    }
    write_report()

    # -- 4. measurements of the best checkpoint
    best = load_model(out / "best", device=device)
    best.eval()
    if device == "cuda":
        report["decode_exact"] = measure_decode(best, sync)
        log(f"decode: {report['decode_exact']}")
    try:  # the explorer's path with the starting model (a trained run has no directions yet)
        engine_model = args.init_from if args.init_from.lower() != "none" else str(out / "best")
        report["engine"] = measure_engine(engine_model, device, sync, reps=40 if device == "cuda" else 3)
        log(f"engine: {report['engine']}")
    except Exception as e:  # measured where it can be; the training result stands either way
        report["engine"] = {"error": f"{type(e).__name__}: {e}"}
    write_report()
    if args.paper_model and device == "cuda":
        try:
            report["paper_model"] = measure_paper_model(device, sync)
            log(f"paper model: {report['paper_model']}")
        except Exception as e:
            report["paper_model"] = {"error": f"{type(e).__name__}: {e}"}
    report["total_minutes"] = round((time.monotonic() - t_start) / 60, 2)
    write_report()
    if args.export:
        import shutil

        dest = Path(args.export)
        (dest / "best").mkdir(parents=True, exist_ok=True)
        for f in (out / "best").iterdir():
            shutil.copy2(f, dest / "best" / f.name)
        for f in (out / "metrics.jsonl", out / "samples" / "latest.png"):
            shutil.copy2(f, dest / f.name)
    print(json.dumps(report, indent=2))
    return 0 if math.isfinite(res.best_val_bpd or float("nan")) else 1


if __name__ == "__main__":
    sys.exit(main())
