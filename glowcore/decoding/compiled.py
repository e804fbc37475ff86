"""Frozen inference graphs of Glow's reverse pass, for interactive decoding on the CPU.

Decoding one 64x64 face is a few hundred small tensor operations. Run eagerly from Python, each
pays interpreter and dispatch time (a sizeable share of a small decode), and every one of them
needs the GIL, so a busy GUI thread in the same process slows a decode further.
:func:`reverse_graph` traces ``Glow.reverse`` for one batch size with TorchScript, one graph per
level (between levels a render can be cancelled), and freezes them: the weights (the fused
ActNorm + 1x1 inverses, the folded coupling outputs, ...) become constants and each level runs
in C++ (what that gains, measured: docs/benchmarks.md and ``benchmarks/glow_benchmark.py``).

A graph is built on first use (about one second, including the profiling executor's first runs)
and cached on the model, keyed on the latent's shapes and dtypes (so the batch size), the
fast-networks switch and the identity and version of every parameter and buffer, so an optimizer
step, ``load_state_dict`` or ``.to()`` makes a new one. It is used only where it computes exactly what the eager pass computes:
eval mode, no autograd, CPU, and batches of at most :data:`MAX_BATCH` (larger batches amortise the
Python overhead themselves). A damped reverse (:func:`glowcore.decoding.stable.damped_reverse`, the
thread's damping then: :mod:`glowcore.base.modes`) gets graphs of its own, with that damping frozen in. ``GLOW_NO_JIT=1`` or :func:`set_enabled` turns it off. If tracing fails (a torch
build without TorchScript), the eager pass is used and the failure is remembered, not retried.

**TorchScript is deprecated** (torch 2.13 warns on ``torch.jit.trace`` and ``torch.jit.freeze``).
It is kept, behind :func:`_freeze`, because nothing else available measures as fast for this
workload (issue 16; docs/benchmarks.md "TorchScript's future"): the frozen graphs decode a face
1.2-1.3x faster than the eager pass and keep it off the GIL, which a GUI thread holds during a
drag; ``torch.compile`` (inductor) was slower than the graphs at batch 1, takes half a minute to
compile and needs a C++ compiler on the user's machine; ``torch.export`` cannot trace the layers'
weight caches (their keys read ``data_ptr``). :func:`_freeze` uses the two calls only where they
exist, silences exactly their deprecation warnings (nothing else; so a ``-W error`` run does not
turn them into a build failure), and checks each frozen level against the eager pass on the
example it was traced with: a graph that differs (a future torch changing the deprecated path's
behaviour) is not used, nor is one that fails to build; decoding is then eager, as with
``GLOW_NO_JIT=1``. The replacement, once the layers' caches and mode switches are explicit
(issue 16's layering), is ``torch.export`` of each level with ahead-of-time compilation, or the
eager pass if that gain no longer holds.
"""

from __future__ import annotations

import operator
import os
import warnings
from typing import TYPE_CHECKING, Callable, Optional

import torch
from torch import Tensor, nn

from ..base import modes
from ..base.modes import is_tracing, no_build
from ..base.progress import CancelToken

if TYPE_CHECKING:
    from ..latent import Latent

__all__ = ["reverse_graph", "LevelGraphs", "built", "no_build", "set_enabled", "enabled", "MAX_BATCH"]

#: Largest batch decoded through a frozen graph (the interactive sizes).
MAX_BATCH = 2

_enabled = os.environ.get("GLOW_NO_JIT", "") in ("", "0")


def set_enabled(on: bool) -> None:
    """Turn the frozen graphs on or off for this process."""
    global _enabled
    _enabled = bool(on)


def enabled() -> bool:
    return _enabled


class _LevelReverse(nn.Module):
    """``Glow.reverse_level(i, h, eps)`` as a module to trace (``h`` absent at the top level)."""

    def __init__(self, model: nn.Module, i: int, top: bool) -> None:
        super().__init__()
        self.model = model
        self.i = i
        self.top = top

    def forward(self, *inputs: Tensor) -> Tensor:
        h, eps = (None, inputs[0]) if self.top else inputs
        return self.model.reverse_level(self.i, h, eps)


class LevelGraphs:
    """The reverse pass as one frozen graph per level, run from the top level down; between
    levels it checks ``cancel``, so an interactive render can give up on a stale picture."""

    def __init__(self, graphs: list[Callable[..., Tensor]]) -> None:
        self.graphs = graphs  # top level first

    def __call__(self, latent: "Latent", cancel: Optional[CancelToken] = None) -> Tensor:
        levels = latent.levels
        h = self.graphs[0](levels[-1])
        for graph, eps in zip(self.graphs[1:], reversed(levels[:-1])):
            if cancel is not None:
                cancel.check()
            h = graph(h, eps)
        return h


#: The deprecation warnings :func:`_freeze` silences (torch 2.13's wording; only these).
_DEPRECATED = r"`torch\.jit\.(trace|trace_method|freeze)` is deprecated"


class GraphMismatch(RuntimeError):
    """A frozen graph computed something else than the eager pass it was traced from."""


def _freeze(module: nn.Module, args: tuple, expected: Tensor, rtol: float = 1e-4) -> Callable[..., Tensor]:
    """``torch.jit.freeze(torch.jit.trace(module, args))``, run a few times (the profiling
    executor optimises it over the first runs) and checked against ``expected`` (the eager
    output for ``args``). Raises where TorchScript is missing or the graph differs; the caller
    then decodes eagerly. ``rtol``: the largest difference allowed, relative to ``1 + max
    |expected|`` (the bf16 networks' graphs get more: another CPU's kernels may round otherwise;
    the check is for a graph that computes something else). See the module docstring for why
    this deprecated path is kept."""
    trace, freeze = getattr(torch.jit, "trace", None), getattr(torch.jit, "freeze", None)
    if trace is None or freeze is None:
        raise RuntimeError("this torch has no torch.jit.trace/freeze")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATED, category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=_DEPRECATED, category=FutureWarning)
        # TracerWarnings (data-dependent control flow) are what the check below guards against
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        graph = freeze(trace(module, args, check_trace=False))
    for _ in range(3):
        out = graph(*args)
    tol = rtol * (1.0 + float(expected.abs().max()))
    if out.shape != expected.shape or out.dtype != expected.dtype or not bool(((out - expected).abs() <= tol).all()):
        raise GraphMismatch(f"a frozen level differs from the eager pass by {float((out - expected).abs().max()):.3g}")
    return graph


_version_of = operator.attrgetter("_version")


def _weights_key(tensors: list[Tensor]) -> tuple:
    # every tensor's storage address and in-place version, gathered by ``map`` (C loops): this
    # runs on every live render, holding the GIL the GUI thread wants (~600 tensors)
    return tuple(map(Tensor.data_ptr, tensors)), tuple(map(_version_of, tensors))


def _build(model: nn.Module, example: list[Tensor], fast: bool) -> LevelGraphs:
    n = len(example)
    wrappers = [_LevelReverse(model, i, i == n - 1).eval() for i in range(n - 1, -1, -1)]
    eps = [t.detach().clone() for t in reversed(example)]  # top level first
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in params:  # frozen constants must not require grad
            p.requires_grad_(False)
        with modes.tracing(), torch.inference_mode(False), torch.no_grad(), modes.fast_networks(fast):
            # one eager pass first (as traced: plain bf16 weights), so that every layer's eval
            # cache is built outside the trace and enters the graph as a constant; it also gives
            # each level's example input and the output its graph must reproduce
            inputs, outputs, h = [], [], None
            for wrapper, e in zip(wrappers, eps):
                args = (e,) if h is None else (h, e)
                inputs.append(args)
                h = wrapper(*args)
                outputs.append(h)
            rtol = 1e-2 if fast else 1e-4
            graphs = [_freeze(wrapper, args, out, rtol) for wrapper, args, out in zip(wrappers, inputs, outputs)]
    finally:
        for p in params:
            p.requires_grad_(True)
    return LevelGraphs(graphs)


def built(model: nn.Module) -> list[tuple]:
    """The keys (latent shapes, dtypes, fast switch, damping) of the graphs ``model`` holds now."""
    return [k for k in model.__dict__.get("_reverse_graphs", {}) if isinstance(k, tuple)]


def reverse_graph(model: nn.Module, latent: "Latent") -> Optional[LevelGraphs]:
    """Frozen graphs computing ``model.reverse`` for latents shaped like ``latent``, or ``None``
    where the eager pass must run (see the module docstring). Thread-compatible, not
    thread-safe: one thread decodes with a model at a time."""
    levels = latent.levels
    if (
        not _enabled
        or model.training
        or torch.is_grad_enabled()
        or latent.device.type != "cpu"
        or latent.batch_size > MAX_BATCH
        or latent.shapes != model.latent_shapes  # the eager pass says what is wrong
        or is_tracing()
    ):
        return None
    fast = modes.fast_networks_on()
    cache: dict = model.__dict__.setdefault("_reverse_graphs", {})
    if cache.get("failed"):
        return None
    damping = modes.damping()  # traced in: a damped pass has graphs of its own
    shape_key = (tuple(tuple(t.shape) for t in levels), tuple(t.dtype for t in levels), fast, damping)
    hit = cache.get(shape_key)
    if hit is not None and hit[0] == _weights_key(cache["tensors"]):
        return hit[1]
    if not modes.building_allowed():
        return None
    try:
        graph = _build(model, levels, fast)
    except Exception as e:  # no TorchScript in this torch build, or an op it cannot trace
        cache.clear()
        cache["failed"] = f"{type(e).__name__}: {e}"
        return None
    if hit is not None or len(cache) > 8:  # weights changed, or too many shapes: start afresh
        cache.clear()
    # every parameter and buffer (the objects stay; load_state_dict, optimizers and .to() change
    # their data or version), listed once: walking the modules costs more than a small decode
    tensors = cache.setdefault("tensors", [*model.parameters(), *model.buffers()])
    cache[shape_key] = (_weights_key(tensors), graph)
    return graph
