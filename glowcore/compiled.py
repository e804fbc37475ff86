"""Frozen inference graphs of Glow's reverse pass, for interactive decoding on the CPU.

Decoding one 64x64 face is a few hundred small tensor operations. Run eagerly from Python, each
pays interpreter and dispatch time (about 4 of 16-20 ms on the reference 2-core CPU), and every
one of them needs the GIL, so a busy GUI thread in the same process slows a decode further.
:func:`reverse_graph` traces ``Glow.reverse`` for one batch size with TorchScript and freezes it:
the weights (the fused ActNorm + 1x1 inverses, the folded coupling outputs, ...) become constants
and the whole pass runs in C++ (measured in docs/benchmarks.md: 16.0 -> 11.4 ms exact and
15.6 -> 10.8 ms with the bf16 networks, 2 threads).

A graph is built on first use (about one second, including the profiling executor's first runs)
and cached on the model, keyed on the batch size, the fast-networks switch, the device and the
identity and version of every parameter and buffer, so an optimizer step, ``load_state_dict`` or
``.to()`` makes a new one. It is used only where it computes exactly what the eager pass computes:
eval mode, no autograd, CPU, undamped reverse (:mod:`glowcore.stable` re-decodes blown regions
eagerly), and batches of at most :data:`MAX_BATCH` (larger batches amortise the Python overhead
themselves). ``GLOW_NO_JIT=1`` or :func:`set_enabled` turns it off. If tracing fails (a torch
build without TorchScript), the eager pass is used and the failure is remembered, not retried.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Callable, Optional

import torch
from torch import Tensor, nn

__all__ = ["reverse_graph", "set_enabled", "enabled", "MAX_BATCH"]

#: Largest batch decoded through a frozen graph (the interactive sizes).
MAX_BATCH = 2

_STATE = threading.local()
_DISABLED_BY_ENV = os.environ.get("GLOW_NO_JIT", "") not in ("", "0")
_enabled = not _DISABLED_BY_ENV


def set_enabled(on: bool) -> None:
    """Turn the frozen graphs on or off for this process."""
    global _enabled
    _enabled = bool(on)


def enabled() -> bool:
    return _enabled


def is_tracing() -> bool:
    """True while :func:`reverse_graph` traces (layers then avoid ops TorchScript cannot hold)."""
    return bool(getattr(_STATE, "tracing", False)) or torch.jit.is_tracing()


class _Reverse(nn.Module):
    """``Glow.reverse`` over the levels of a latent passed as separate tensors."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *levels: Tensor) -> Tensor:
        from .model import Latent

        return self.model.reverse(Latent(list(levels)))


def _weights_key(tensors: list[Tensor]) -> tuple:
    return tuple((t.data_ptr(), t._version) for t in tensors)


def _build(model: nn.Module, example: list[Tensor], fast: bool) -> Callable[..., Tensor]:
    from .flows import fast_networks

    wrapper = _Reverse(model).eval()
    inputs = tuple(t.detach().clone() for t in example)
    params = [p for p in model.parameters() if p.requires_grad]
    _STATE.tracing = True
    try:
        for p in params:  # frozen constants must not require grad
            p.requires_grad_(False)
        with torch.inference_mode(False), torch.no_grad(), fast_networks(fast), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # one eager pass first (as traced: plain bf16 weights), so that every layer's eval
            # cache is built outside the trace and enters the graph as a constant
            wrapper(*inputs)
            graph = torch.jit.freeze(torch.jit.trace(wrapper, inputs, check_trace=False))
            for _ in range(3):  # the profiling executor optimises the graph over the first runs
                graph(*inputs)
    finally:
        _STATE.tracing = False
        for p in params:
            p.requires_grad_(True)
    return graph


def reverse_graph(model: nn.Module, levels: list[Tensor]) -> Optional[Callable[..., Tensor]]:
    """A frozen graph computing ``model.reverse`` for latents shaped like ``levels``, or ``None``
    where the eager pass must run (see the module docstring). Thread-compatible, not
    thread-safe: one thread decodes with a model at a time."""
    from .flows import FAST_NETWORKS, REVERSE_DAMPING

    x = levels[0]
    if (
        not _enabled
        or model.training
        or torch.is_grad_enabled()
        or x.device.type != "cpu"
        or x.shape[0] > MAX_BATCH
        or getattr(REVERSE_DAMPING, "value", None) is not None
        or is_tracing()
    ):
        return None
    fast = bool(getattr(FAST_NETWORKS, "value", False))
    cache: dict = model.__dict__.setdefault("_reverse_graphs", {})
    if cache.get("failed"):
        return None
    shape_key = (tuple(tuple(t.shape) for t in levels), tuple(t.dtype for t in levels), fast)
    hit = cache.get(shape_key)
    if hit is not None and hit[0] == _weights_key(cache["tensors"]):
        return hit[1]
    try:
        graph = _build(model, levels, fast)
    except Exception as e:  # no TorchScript in this torch build, or an op it cannot trace
        cache.clear()
        cache["failed"] = f"{type(e).__name__}: {e}"
        return None
    if hit is not None or len(cache) > 4:  # weights changed, or too many shapes: start afresh
        cache.clear()
    # every parameter and buffer (the objects stay; load_state_dict, optimizers and .to() change
    # their data or version), listed once: walking the modules costs more than a small decode
    tensors = cache.setdefault("tensors", [*model.parameters(), *model.buffers()])
    cache[shape_key] = (_weights_key(tensors), graph)
    return graph
