"""The decoding modes: thread-local switches set by whoever decodes, read by the layers.

Four modes change how the reverse pass computes, for the calling thread only, for the length of a
``with`` block:

* :func:`fast_networks`: the coupling networks run in bfloat16 (``glowcore.nn.coupling``), for
  live display where the CPU computes bf16 natively;
* :func:`reverse_damping`: affine couplings reverse with a :class:`~glowcore.decoding.stable.Damping`
  (``glowcore.decoding.stable`` re-decodes blown-up latents this way);
* :func:`tracing`: a frozen graph is being traced (``glowcore.decoding.compiled``): layers avoid
  ops TorchScript cannot hold;
* :func:`no_build`: frozen graphs already built are used, none is built.

They live here, in one leaf module that imports nothing from glowcore, so that the layers
(``glowcore.nn``) and the decoders above them (``glowcore.decoding``, ``glowcore.model``) share
them without importing each other. The readers (:func:`fast_networks_on`, :func:`damping`,
:func:`is_tracing`, :func:`building_allowed`) are what a layer may ask.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

__all__ = [
    "fast_networks",
    "fast_networks_on",
    "reverse_damping",
    "damping",
    "tracing",
    "is_tracing",
    "no_build",
    "building_allowed",
]

_state = threading.local()  # attributes: fast, damping, tracing, no_build (absent: off)


@contextlib.contextmanager
def _setting(name: str, value: object) -> Iterator[None]:
    """Within the block, mode ``name`` is ``value`` on this thread; restored after it."""
    previous = getattr(_state, name, None)
    setattr(_state, name, value)
    try:
        yield
    finally:
        setattr(_state, name, previous)


def fast_networks(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Context manager: inside it (on this thread), in eval mode without autograd on the CPU, the
    coupling networks run in bfloat16 with pre-packed weights (faster per network on CPUs with
    native bf16: docs/benchmarks.md). The invertible arithmetic stays float32, so this is what
    training with ``--precision bf16`` computes; outputs differ from float32 by a few thousandths.
    Not for exact round trips: ``encode`` and the exact ``decode`` stay in float32.
    ``fast_networks(False)`` turns it off inside an enclosing one."""
    return _setting("fast", bool(enabled))


def fast_networks_on() -> bool:
    return bool(getattr(_state, "fast", False))


def reverse_damping(value: Any) -> contextlib.AbstractContextManager[None]:
    """Within the block, affine couplings reverse with the damping ``value`` (``None``: exact)."""
    return _setting("damping", value)


def damping() -> Any:
    """The damping affine couplings reverse with on this thread (``None``: exact)."""
    return getattr(_state, "damping", None)


def tracing() -> contextlib.AbstractContextManager[None]:
    """Within the block, this thread is tracing a frozen graph."""
    return _setting("tracing", True)


def is_tracing() -> bool:
    """True while a frozen graph is traced (layers then avoid ops TorchScript cannot hold)."""
    if getattr(_state, "tracing", False):
        return True
    import torch  # (only layers ask, and they have imported torch already)

    return torch.jit.is_tracing()


def no_build() -> contextlib.AbstractContextManager[None]:
    """Within the block (this thread), frozen graphs already built are used but none is built: a
    first picture that should not wait for tracing (the explorer builds them once it is idle)."""
    return _setting("no_build", True)


def building_allowed() -> bool:
    return not getattr(_state, "no_build", False)
