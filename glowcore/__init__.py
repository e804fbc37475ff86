"""glowcore: the Qt-free engine of Glow Explorer.

Glow normalizing flows (actnorm, invertible 1x1 convolution, affine coupling, multi-scale),
their checkpoints, and the latent-space operations built on them.
"""

from .io.checkpoint import CheckpointError, default_device, load_model, read_config, save_model
from .nn.flows import FlowLayer
from .base.images import to_tensor, to_uint8
from .model import Glow, GlowConfig
from .latent import Latent

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "FlowLayer",
    "Glow",
    "GlowConfig",
    "Latent",
    "default_device",
    "load_model",
    "read_config",
    "save_model",
    "to_tensor",
    "to_uint8",
    "__version__",
]
