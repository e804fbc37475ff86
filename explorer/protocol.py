"""Messages between the GUI thread and the model worker. Plain data: no Qt, no torch.

Images travel as ``QImage`` objects in the result messages (created by the worker from numpy),
typed here as ``Any`` so this module stays Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .state import DirectionInfo, Snapshot

__all__ = [
    "ModelInfo",
    "InterpParams",
    "ExportParams",
    "RenderRequest",
    "PreviewRequest",
    "AnalysisRequest",
    "RenderResult",
    "PreviewResult",
    "AnalysisResult",
    "JOB_KINDS",
    "EASES",
    "MODES",
    "VIDEO_FORMATS",
]

# The same names as glowcore.ops.interpolate.MODES / EASES (a test checks), kept here so the GUI
# thread need not import glowcore (and with it torch).
MODES = ("slerp", "linear")
EASES = ("smooth", "linear", "ease-in-out", "ease-in", "ease-out")
VIDEO_FORMATS = {"mp4": "MP4 video (*.mp4)", "gif": "Animated GIF (*.gif)", "webp": "Animated WebP (*.webp)"}

# Commands that run as long jobs: progress bar and Cancel in the window.
JOB_KINDS = frozenset({"open_model", "inpaint", "export", "fit_direction", "principal", "save_model", "load_photo"})


@dataclass(frozen=True)
class ModelInfo:
    """What the window needs to know about an opened model."""

    path: str
    name: str
    description: str
    image_size: int
    channels: int
    levels: int
    dim: int
    device: str
    directions: tuple[DirectionInfo, ...]
    metadata: dict = field(default_factory=dict)
    load_seconds: float = 0.0


@dataclass(frozen=True)
class InterpParams:
    """How keyframes are interpolated into a morph."""

    frames: int = 48
    mode: str = "slerp"
    ease: str = "smooth"
    loop: bool = False
    pingpong: bool = False


@dataclass(frozen=True)
class ExportParams:
    """How a morph is written as a video."""

    fps: int = 24
    scale: int = 4
    filter: str = "smooth"  # or "nearest"


@dataclass(frozen=True)
class RenderRequest:
    """Render ``spec`` for the main canvas; ``with_before`` also renders the unedited face."""

    stamp: int
    spec: Snapshot
    with_before: bool = False


@dataclass(frozen=True)
class PreviewRequest:
    """Render frame ``index`` of the morph through ``keyframes`` (latent ids)."""

    stamp: int
    keyframes: tuple[int, ...]
    params: InterpParams
    index: int


@dataclass(frozen=True)
class AnalysisRequest:
    """Project the face of ``spec`` on every direction and measure its bits/dim."""

    stamp: int
    spec: Snapshot


@dataclass
class RenderResult:
    stamp: int
    spec: Snapshot
    image: Any  # QImage
    before: Any = None  # QImage or None
    ms: float = 0.0
    array: Any = None  # the uint8 (H, W, 3) numpy array of ``image``


@dataclass
class PreviewResult:
    stamp: int
    index: int
    frames: int
    image: Any  # QImage
    ms: float = 0.0


@dataclass
class AnalysisResult:
    stamp: int
    spec: Snapshot
    projections: dict[str, float]
    bits_per_dim: Optional[float]
