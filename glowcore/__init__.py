"""glowcore: the Qt-free engine of Glow Explorer.

Glow normalizing flows (actnorm, invertible 1x1 convolution, affine coupling, multi-scale),
their checkpoints, and the latent-space operations built on them. docs/architecture.md maps the
packages (``base``, ``nn``, ``latent``, ``decoding``, ``model``, ``io``, ``data``, ``ops``,
``training``, ``cli``) and what each may import.

The names below are imported on first use (PEP 562), so importing a torch-free part of the
package (``glowcore.io.fileio``, ``glowcore.base.limits``, ...) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "CheckpointError": "glowcore.io.checkpoint",
    "default_device": "glowcore.io.checkpoint",
    "load_model": "glowcore.io.checkpoint",
    "read_config": "glowcore.io.checkpoint",
    "save_model": "glowcore.io.checkpoint",
    "FlowLayer": "glowcore.nn.flows",
    "to_tensor": "glowcore.base.images",
    "to_uint8": "glowcore.base.images",
    "Glow": "glowcore.model",
    "GlowConfig": "glowcore.model",
    "Latent": "glowcore.latent",
}
_PACKAGES = ("base", "nn", "latent", "decoding", "model", "io", "data", "ops", "training", "cli")

__all__ = [*sorted(_EXPORTS), "__version__"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .base.images import to_tensor, to_uint8
    from .io.checkpoint import CheckpointError, default_device, load_model, read_config, save_model
    from .latent import Latent
    from .model import Glow, GlowConfig
    from .nn.flows import FlowLayer


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif name in _PACKAGES:  # ``import glowcore`` then ``glowcore.ops.directions``
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_PACKAGES])
