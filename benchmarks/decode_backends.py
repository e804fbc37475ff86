"""The interactive decode (one face, the exact reverse pass, per level) run by different torch
mechanisms, timed in interleaved rounds with the same thread count (issue 16 item 5: the
TorchScript graphs of ``glowcore.decoding.compiled`` rely on ``torch.jit.trace``/``freeze``, deprecated in
torch 2.13).

    python benchmarks/decode_backends.py MODEL [--threads 1] [--rounds 200] [--backends eager,jit,inductor]

Backends:

* ``eager``: ``Glow.reverse_level`` from Python in inference mode (channels-last activations;
  with ``--fast``, the bf16 coupling networks with oneDNN pre-packed weights and fused ReLU);
* ``jit``: the frozen TorchScript graphs of ``glowcore.decoding.compiled`` (one per level);
* ``inductor``: ``torch.compile(reverse_level, backend="inductor")`` with ``freezing`` on, one
  compiled function per level (needs a C++ compiler when it compiles, at run time on the user's
  machine);
* ``export``: ``torch.export`` of each level, run through the exported program's module (no
  compiler; what an ahead-of-time path would start from).
* ``jit-fuser``, ``jit-ofi``: the frozen graphs with TorchScript's CPU fuser, or through
  ``torch.jit.optimize_for_inference`` (both need LLVM in the torch build; the wheels have none).

``--busy-thread`` times them with a pure-Python thread spinning beside (the GUI thread during a
drag): a backend that issues each operation from Python waits for the GIL between them.

Prints per-backend p50 / p95 / min of the whole decode and per level, the build time, and the
largest pixel difference from the eager pass; also the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import warnings


def _pct(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def _opaque_caches(f, *args):
    """Run ``f`` (a torch.compile'd level) with the layers' eval caches read as constants (their
    keys use ``data_ptr``, which dynamo cannot trace; the weights do not change here) and the
    plain bf16 convolutions (what the TorchScript graphs hold: oneDNN's packed weights are opaque
    to the compilers)."""
    from glowcore.nn import coupling, flows

    saved = flows.EvalCached._cached, coupling._packed_conv_available
    flows.EvalCached._cached = lambda self, name, sources, build: self.__dict__["_eval_cache"][name][1]
    coupling._packed_conv_available = lambda: False
    try:
        return f(*args)
    finally:
        flows.EvalCached._cached, coupling._packed_conv_available = saved


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--fast", type=int, default=None, help="1: bf16 networks (default: where native), 0: float32")
    p.add_argument("--backends", default="eager,jit,inductor,export")
    p.add_argument("--busy-thread", action="store_true", help="time with a Python thread spinning beside the decode (what the GUI thread is during a drag): each torch call issued from Python then waits for the GIL")
    p.add_argument("--json")
    args = p.parse_args(argv)

    import torch

    import glowcore
    from glowcore.base.modes import fast_networks
    from glowcore.decoding import compiled
    from glowcore.nn.coupling import fast_networks_supported

    torch.set_num_threads(args.threads)
    fast = fast_networks_supported() if args.fast is None else bool(args.fast)
    m = glowcore.load_model(args.model, device="cpu").eval()
    for prm in m.parameters():
        prm.requires_grad_(False)
    lat = m.sample_latent(1, 0.7, seed=0)
    n = len(lat.levels)
    load0 = open("/proc/loadavg").read().split()[:3]

    def eager_levels():
        return [lambda h, e, i=i: m.reverse_level(i, h, e) for i in range(n)]

    runners: dict[str, list] = {}
    build_s: dict[str, float] = {}
    notes: dict[str, str] = {}
    names = [b for b in args.backends.split(",") if b]
    with torch.inference_mode(), fast_networks(fast):
        ref = m.reverse(lat)
        for b in names:
            t = time.perf_counter()
            try:
                if b == "eager":
                    with compiled.no_build():
                        runners[b] = eager_levels()
                elif b == "jit":
                    g = compiled.reverse_graph(m, lat)
                    if g is None:
                        raise RuntimeError("no graph")
                    runners[b] = [(lambda h, e, f=g.graphs[n - 1 - i]: f(e) if h is None else f(h, e)) for i in range(n)]
                elif b in ("jit-fuser", "jit-ofi"):  # variants of the frozen graphs, built apart from the cache
                    if b == "jit-fuser":  # TorchScript's CPU fuser (NNC), off by default
                        torch._C._jit_override_can_fuse_on_cpu(True)
                        torch._C._jit_set_texpr_fuser_enabled(True)
                    g = compiled._build(m, lat.levels, fast)
                    if b == "jit-ofi":
                        g = compiled.LevelGraphs([torch.jit.optimize_for_inference(f) for f in g.graphs])
                    runners[b] = [(lambda h, e, f=g.graphs[n - 1 - i]: f(e) if h is None else f(h, e)) for i in range(n)]
                elif b in ("inductor", "inductor-nofreeze"):
                    import torch._inductor.config as icfg

                    icfg.freezing = b == "inductor"
                    fns = []
                    for i in range(n):
                        f = torch.compile(lambda h, e, i=i: m.reverse_level(i, h, e), backend="inductor", dynamic=False, fullgraph=True)
                        fns.append(lambda h, e, f=f: _opaque_caches(f, h, e))
                    h = None
                    for i in range(n - 1, -1, -1):  # compile now (the first call)
                        h = fns[i](h, lat.levels[i])
                    runners[b] = fns
                elif b == "export":
                    from torch import nn

                    class Level(nn.Module):
                        def __init__(self, i):
                            super().__init__()
                            self.m, self.i = m, i

                        def forward(self, *xs):
                            return m.reverse_level(self.i, None, xs[0]) if len(xs) == 1 else m.reverse_level(self.i, xs[0], xs[1])

                    progs = []
                    with torch.inference_mode(False), torch.no_grad(), compiled.no_build(), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        h = None
                        for i in range(n - 1, -1, -1):
                            e = lat.levels[i].clone()
                            inp = (e,) if h is None else (h.clone(), e)
                            ep = torch.export.export(Level(i), inp)
                            mod = ep.module()
                            progs.append((i, mod))
                            h = mod(*inp)
                    by_level = dict(progs)
                    runners[b] = [(lambda h, e, f=by_level[i]: f(e) if h is None else f(h, e)) for i in range(n)]
                build_s[b] = time.perf_counter() - t
            except Exception as e:  # report and go on
                notes[b] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        # warm up and check
        diffs = {}
        for b, run in runners.items():
            for _ in range(5):
                h = None
                for i in range(n - 1, -1, -1):
                    h = run[i](h, lat.levels[i])
            diffs[b] = float((h.float() - ref).abs().max())
        stop = threading.Event()
        if args.busy_thread:
            def spin():
                x = 0
                while not stop.is_set():
                    for k in range(1000):
                        x += k * k
            threading.Thread(target=spin, daemon=True).start()
        times = {b: [] for b in runners}
        lvl = {b: [[] for _ in range(n)] for b in runners}
        for r in range(args.rounds):
            order = list(runners) if r % 2 == 0 else list(reversed(list(runners)))
            for b in order:
                run = runners[b]
                t0 = time.perf_counter()
                h = None
                for i in range(n - 1, -1, -1):
                    t = time.perf_counter()
                    h = run[i](h, lat.levels[i])
                    lvl[b][i].append((time.perf_counter() - t) * 1000)
                times[b].append((time.perf_counter() - t0) * 1000)
    stop.set()
    load1 = open("/proc/loadavg").read().split()[:3]
    out = {
        "cpu": next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?"),
        "torch": torch.__version__, "threads": args.threads, "fast": fast, "rounds": args.rounds, "busy_thread": args.busy_thread,
        "loadavg": [load0, load1], "failed": notes,
        "backends": {
            b: {
                "p50_ms": round(_pct(ts, 0.5), 2), "p95_ms": round(_pct(ts, 0.95), 2), "min_ms": round(min(ts), 2),
                "levels_p50_ms": [round(statistics.median(lvl[b][i]), 2) for i in range(n - 1, -1, -1)],
                "build_s": round(build_s[b], 2), "max_abs_diff_vs_eager_pass": diffs[b],
            }
            for b, ts in times.items()
        },
    }
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
