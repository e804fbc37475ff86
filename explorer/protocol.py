"""Messages between the GUI thread and the model worker. Plain data: no Qt, no torch.

Two kinds of traffic:

* interactive requests (:class:`RenderRequest`, :class:`PhotoCompositeRequest`,
  :class:`PreviewRequest`, :class:`AnalysisRequest`): stamped, one-slot mailboxes, the newest request wins;
* jobs (:class:`Job` subclasses, one dataclass per kind: :class:`OpenModel`, :class:`LoadPhoto`,
  :class:`Inpaint`, ...): queued, run in order, cancellable; each names its result type
  (:class:`FaceResult`, :class:`PhotoResult`, :class:`Candidates`, ...).

Images travel as ``QImage`` objects in the result messages (created by the worker from numpy),
typed here as ``Any`` so this module stays Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Union

from .state import DirectionInfo, Snapshot

__all__ = [
    "describe_error",
    "ModelInfo",
    "InterpParams",
    "ExportParams",
    "RenderRequest",
    "PreviewRequest",
    "AnalysisRequest",
    "RenderResult",
    "PreviewResult",
    "AnalysisResult",
    "Job",
    "OpenModel",
    "LoadPhoto",
    "Materialize",
    "AdoptCandidate",
    "Filmstrip",
    "InpaintParams",
    "Inpaint",
    "InpaintPhoto",
    "AdoptPhotoFill",
    "Export",
    "FitDirection",
    "Principal",
    "SaveModel",
    "FaceResult",
    "PhotoResult",
    "FilmFrame",
    "Candidates",
    "Done",
    "Directions",
    "OpenPhoto",
    "SavePhoto",
    "PhotoOpened",
    "PhotoCompositeRequest",
    "PhotoComposite",
    "EASES",
    "MODES",
    "VIDEO_FORMATS",
]

# The same names as glowcore.ops.interpolate.MODES / EASES (a test checks), kept here so the GUI
# thread need not import glowcore (and with it torch).
MODES = ("slerp", "linear")
EASES = ("smooth", "linear", "ease-in-out", "ease-in", "ease-out")
VIDEO_FORMATS = {"mp4": "MP4 video (*.mp4)", "gif": "Animated GIF (*.gif)", "webp": "Animated WebP (*.webp)"}



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
    # frames near a keyframe that is a photo carry the photo's own detail at the exported size
    # (glowcore.ops.morphsize); the frames between are the model's faces enlarged
    detail: bool = True


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
    #: the picture of the same request again, checked in full once the drag paused (it replaces
    #: the one shown for ``stamp``; see explorer.engine_live)
    refined: bool = False


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


# ====================================================================== jobs (GUI -> worker)
class Job:
    """A command for the worker: queued, run in order, cancellable; the subclasses are the kinds.

    ``title``: shown in the status bar's job bar while it runs ("" for quick commands, which show
    no progress); ``fail_title``: the start of the message when it fails; ``serves_renders``:
    whether pending slider renders are served between its steps (not while a model loads).
    """

    kind: ClassVar[str] = "job"
    title: ClassVar[str] = ""
    fail_title: ClassVar[str] = ""
    serves_renders: ClassVar[bool] = True

    @property
    def long(self) -> bool:
        """A long job: progress bar and Cancel in the window."""
        return bool(self.title)


@dataclass(frozen=True, eq=False)
class OpenModel(Job):
    """Open a model folder or .safetensors file (None: the bundled model). Result: :class:`ModelInfo`."""

    path: Optional[str] = None
    kind: ClassVar[str] = "open_model"
    title: ClassVar[str] = "Opening model"
    fail_title: ClassVar[str] = "Could not open the model"
    serves_renders: ClassVar[bool] = False


@dataclass(frozen=True, eq=False)
class LoadPhoto(Job):
    """Frame and encode a photo (a path or encoded bytes). Result: :class:`PhotoResult`."""

    source: Union[str, bytes]
    label: str = "photo"
    kind: ClassVar[str] = "load_photo"
    title: ClassVar[str] = "Encoding photo"
    fail_title: ClassVar[str] = "Could not open the photo"


@dataclass(frozen=True, eq=False)
class OpenPhoto(Job):
    """Open a photo to edit at its own size: read it (EXIF orientation applied), find and align
    the face (or use ``box``, (x, y, w, h) in photo pixels; or the centre square), encode it.
    ``reframe``: frame again the photo of that open version (a new box, another face, the centre
    square) with the fills pasted into it, rather than the file as it was read.
    Result: :class:`PhotoOpened`; a photo not larger than the model gives a :class:`PhotoResult`
    (its face only, as :class:`LoadPhoto`)."""

    source: Union[str, bytes]
    label: str = "photo"
    box: Optional[tuple[float, float, float, float]] = None
    centre_crop: bool = False
    face: int = 0  # which detected face: 0 = the largest
    reframe: Optional[int] = None  # an open photo version (its face's latent id): frame its pixels, fills included, instead of reading source
    kind: ClassVar[str] = "open_photo"
    title: ClassVar[str] = "Opening photo"
    fail_title: ClassVar[str] = "Could not open the photo"


@dataclass(frozen=True, eq=False)
class SavePhoto(Job):
    """Write the open photo at full size with the face of ``spec`` pasted back. ``overwrite_input``:
    the user confirmed replacing the photo's own file. Result: :class:`Done`."""

    spec: Snapshot
    path: str
    quality: int = 95
    overwrite_input: bool = False
    spread: bool = True  # glowcore.ops.paste.paste(spread=...)
    kind: ClassVar[str] = "save_photo"
    title: ClassVar[str] = "Saving photo"
    fail_title: ClassVar[str] = "Could not save the photo"


@dataclass(frozen=True, eq=False)
class Materialize(Job):
    """Store the (edited) face of ``spec`` as a latent. Result: :class:`FaceResult`."""

    spec: Snapshot
    kind: ClassVar[str] = "materialize"
    fail_title: ClassVar[str] = "Could not use this face"


@dataclass(frozen=True, eq=False)
class AdoptCandidate(Job):
    """Encode inpainting candidate ``index`` of the inpainting job ``batch``. Result: :class:`FaceResult`."""

    index: int
    batch: Optional[int] = None
    kind: ClassVar[str] = "adopt_candidate"
    fail_title: ClassVar[str] = "Could not use this candidate"


@dataclass(frozen=True, eq=False)
class Filmstrip(Job):
    """``count`` frames spread over the morph. Result: a list of :class:`FilmFrame`."""

    keyframes: tuple[int, ...]
    params: InterpParams
    count: int = 12
    kind: ClassVar[str] = "filmstrip"
    fail_title: ClassVar[str] = "Could not preview the morph"


@dataclass(frozen=True)
class InpaintParams:
    """The Inpaint tab's settings."""

    candidates: int = 4
    steps: Optional[int] = None
    temperature: float = 0.7
    seed: int = 0


@dataclass(frozen=True, eq=False)
class Inpaint(Job):
    """Fill the ``mask`` (bool (H, W)) of ``image`` (uint8 (H, W, C)). Result: :class:`Candidates`."""

    image: Any
    mask: Any
    params: InpaintParams = InpaintParams()
    kind: ClassVar[str] = "inpaint"
    title: ClassVar[str] = "Filling in"
    fail_title: ClassVar[str] = "Inpainting failed"


@dataclass(frozen=True, eq=False)
class InpaintPhoto(Job):
    """Fill the ``mask`` painted on the open photo (bool (H, W), the photo's size) of the face of
    ``spec`` (the photo's face, with its edits): the mask is carried into the face's frame at the
    model's resolution and the face filled there. Painted pixels outside the frame are left
    alone. Result: :class:`Candidates` (the filled faces, model size); :class:`AdoptPhotoFill`
    pastes one back into the photo."""

    spec: Snapshot
    mask: Any
    params: InpaintParams = InpaintParams()
    spread: bool = True  # how the edits are pasted into the photo that is filled (as on screen)
    kind: ClassVar[str] = "inpaint_photo"
    title: ClassVar[str] = "Filling in the photo"
    fail_title: ClassVar[str] = "Inpainting failed"


@dataclass(frozen=True, eq=False)
class AdoptPhotoFill(Job):
    """Paste candidate ``index`` of the photo inpainting ``batch`` back into the full photo (the
    hole gets the enlarged fill, feathered into the photo's own pixels): a new version of the
    photo, opened as a photo. Result: :class:`PhotoOpened` (``face``: the detected face used)."""

    index: int
    batch: Optional[int] = None
    face: int = 0
    kind: ClassVar[str] = "adopt_photo_fill"
    title: ClassVar[str] = "Pasting the fill into the photo"
    fail_title: ClassVar[str] = "Could not use this candidate"


@dataclass(frozen=True, eq=False)
class Export(Job):
    """Write the morph through ``keyframes`` as a video at ``path``. Result: :class:`Done`."""

    keyframes: tuple[int, ...]
    params: InterpParams
    export: ExportParams
    path: str
    kind: ClassVar[str] = "export"
    title: ClassVar[str] = "Exporting video"
    fail_title: ClassVar[str] = "The export failed"


@dataclass(frozen=True, eq=False)
class FitDirection(Job):
    """A new direction from tagged faces (latent ids). Result: :class:`Directions`."""

    name: str
    positives: tuple[int, ...]
    negatives: tuple[int, ...]
    kind: ClassVar[str] = "fit_direction"
    title: ClassVar[str] = "Fitting the new direction"
    fail_title: ClassVar[str] = "Could not make the new slider"


@dataclass(frozen=True, eq=False)
class Principal(Job):
    """``k`` principal directions from ``samples`` sampled faces. Result: :class:`Directions`."""

    k: int = 8
    samples: int = 256
    temperature: float = 0.7
    seed: int = 0
    kind: ClassVar[str] = "principal"
    title: ClassVar[str] = "Finding principal directions"
    fail_title: ClassVar[str] = "Could not find principal directions"


@dataclass(frozen=True, eq=False)
class SaveModel(Job):
    """Save the model with its directions. Result: :class:`Done`."""

    path: str
    kind: ClassVar[str] = "save_model"
    title: ClassVar[str] = "Saving model"
    fail_title: ClassVar[str] = "Could not save the model"


# ====================================================================== job results (worker -> GUI)
@dataclass(frozen=True)
class FaceResult:
    """A face stored in the worker as latent ``latent_id``, and its picture."""

    latent_id: int
    image: Any  # QImage


@dataclass(frozen=True)
class PhotoResult:
    """An encoded photo: its latent, its framed picture, what framing said, and its label."""

    latent_id: int
    image: Any  # QImage
    message: str
    label: str


@dataclass(frozen=True)
class FilmFrame:
    index: int
    image: Any  # QImage


@dataclass(frozen=True)
class Candidates:
    """Inpainting candidates (the job's id, known to the GUI, names the batch)."""

    images: tuple[Any, ...]  # QImage


@dataclass(frozen=True)
class Done:
    """A job that leaves a message (export, save model)."""

    message: str


@dataclass(frozen=True)
class Directions:
    """The model's directions after a change."""

    directions: tuple[DirectionInfo, ...]


@dataclass(frozen=True)
class PhotoOpened:
    """A photo opened for full-size editing: its face as latent ``latent_id`` (``face``: the
    model-size picture), the whole photo (``photo``, upright), and where the face is: ``box``
    (the detector's or the user's, x, y, w, h), ``frame`` (the 4 corners of the aligned face's
    frame, a turned square), ``landmarks`` (name -> (x, y)); all in photo pixels. ``found``:
    False when the centre square was used (no face found, or asked for)."""

    latent_id: int
    face: Any  # QImage
    photo: Any  # QImage
    label: str
    message: str
    size: tuple[int, int]  # width, height
    box: tuple[float, float, float, float]
    frame: tuple[tuple[float, float], ...]
    landmarks: dict
    found: bool
    path: Optional[str] = None
    faces: tuple[tuple[float, float, float, float], ...] = ()  # every face detected, largest first
    face_index: int = 0  # the one used


# ====================================================================== the photo composite
@dataclass(frozen=True)
class PhotoCompositeRequest:
    """The open photo with the face of ``spec`` pasted back (newest wins). ``scale``: how many
    screen pixels a photo pixel takes in the view; below 1 the worker may paste at that reduced
    resolution (the display cannot show more; Save is always at full resolution)."""

    stamp: int
    spec: Snapshot
    scale: float = 1.0
    spread: bool = True  # glowcore.ops.paste.paste(spread=...): the change continued past the frame


@dataclass
class PhotoComposite:
    """The changed region of the photo: ``patch`` covers ``size`` photo pixels from ``offset``
    (fewer pixels than ``size`` when pasted at the display's resolution); None: no change."""

    stamp: int
    spec: Snapshot
    patch: Any  # QImage or None
    offset: tuple[int, int] = (0, 0)
    size: tuple[int, int] = (0, 0)
    ms: float = 0.0


def describe_error(exc: BaseException) -> str:
    """A one-paragraph, user-readable message for an exception raised by the engine."""
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"{exc.filename}: no such file"
    if isinstance(exc, (ValueError, OSError, KeyError, TypeError, RuntimeError)):
        text = str(exc).strip().strip("'\"") or type(exc).__name__
        if isinstance(exc, (ValueError, OSError)):
            return text
        return f"{type(exc).__name__}: {text.splitlines()[0]}"
    return f"{type(exc).__name__}: {exc}"
