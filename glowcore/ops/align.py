"""Face alignment with rotation: a photo of any size -> the face in CelebA's 64x64 framing.

:func:`align` finds the face (OpenCV's Haar cascade, largest face by default; tried again on the
photo turned by +-25 degrees when nothing is found upright), takes the detector's box as a coarse
framing, then refines it with a small network of our own (:class:`glowcore.ops.alignnet.AlignNet`,
shipped in ``assets/models/align``; nothing is downloaded) that predicts the similarity transform
(rotation, scale, shift) from the current window to CelebA's framing, three times.

The result, :class:`AlignedFace`, holds the 64x64 face, the transform (photo -> frame, 2x3, in
continuous pixel coordinates: pixel ``(i, j)`` has its centre at ``(i + 0.5, j + 0.5)``), the
detector's box and the eyes and mouth (the mean CelebA positions mapped back into the photo).
:mod:`glowcore.ops.paste` puts an edited face back into the photo.

Accuracy and speed are measured by ``benchmarks/align_benchmark.py`` (docs/latent_ops.md).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .alignnet import FRAME, REF_POINTS, apply, compose, invert, params_to_matrix
from .photo import FACE_BOX_OFFSET, FACE_BOX_SCALE, WORK_SIDE, _describe, detect_faces, open_image

__all__ = ["AlignedFace", "align", "locate", "refine", "read_photo", "render_face", "warp_matrix", "MIN_FACE", "load_align_net"]

#: Faces narrower than this (detector box, photo pixels) are refused: too little detail to edit.
MIN_FACE = 40
#: Refinement steps of the network.
STEPS = 3
#: Angles (degrees) the photo is turned by when no upright face is found.
RETRY_ANGLES = (25.0, -25.0)
#: A square photo whose found frame is within this fraction of its side of the photo's own
#: corners is taken as already framed and used whole (as :func:`glowcore.ops.photo.frame_photo` does).
ALREADY_FRAMED = 0.1
_NET: Any = None


@dataclass
class AlignedFace:
    """A face cut out of a photo in CelebA's framing.

    ``face``: ``(size, size, 3)`` uint8; ``transform``: 2x3 float64 map from photo coordinates to
    the ``FRAME``-pixel frame (``face`` is the frame resampled to ``size``); ``box``: the detector's
    (or the given) ``(x, y, w, h)`` in photo pixels; ``landmarks``: ``{"left_eye", "right_eye",
    "mouth"}`` photo coordinates; ``photo_size``: (width, height); ``message``: one line saying what
    was done; ``faces``: every detected box, largest first."""

    face: np.ndarray
    transform: np.ndarray
    box: tuple[float, float, float, float]
    landmarks: dict = field(default_factory=dict)
    photo_size: tuple[int, int] = (0, 0)
    message: str = ""
    faces: list = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(self.face.shape[0])

    @property
    def angle(self) -> float:
        """The face's roll in the photo, degrees (positive: turned clockwise on screen)."""
        m = self.transform
        return -math.degrees(math.atan2(m[1, 0], m[0, 0]))

    @property
    def face_side(self) -> float:
        """The frame's side in photo pixels."""
        m = self.transform
        return FRAME / math.hypot(m[0, 0], m[1, 0])


def load_align_net(folder: str | os.PathLike | None = None):
    """The alignment network (float32, eval mode), loaded once from the bundled safetensors."""
    global _NET
    if folder is None and _NET is not None:
        return _NET
    import torch
    from safetensors.torch import load_file

    from .alignnet import AlignNet

    if folder is None:
        from importlib import resources

        try:
            root = Path(str(resources.files("glow_explorer_assets"))) / "models" / "align"
        except ModuleNotFoundError:
            root = Path(__file__).resolve().parents[2] / "assets" / "models" / "align"
    else:
        root = Path(folder)
    path = root / "align.safetensors"
    if not path.is_file():
        raise RuntimeError(f"{path}: the face-alignment network is missing (reinstall glow-explorer)")
    card = json.loads((root / "align.json").read_text()) if (root / "align.json").is_file() else {}
    net = AlignNet(int(card.get("width", 16)))
    net.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    net.eval()
    if folder is None:
        _NET = net
    return net


def read_photo(source: Any) -> np.ndarray:
    """A photo (path, bytes, file object, PIL image or uint8 array) as an ``(H, W, 3)`` uint8
    array at full resolution, EXIF orientation applied; 16-bit, CMYK, palette, gray and alpha
    (composited on white) converted. Errors name the file and the problem."""
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, 2)
        if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 array, got {arr.shape} {arr.dtype}")
        if arr.shape[2] == 1:
            arr = np.repeat(arr, 3, 2)
        if arr.shape[2] == 4:
            a = arr[..., 3:].astype(np.float32) / 255.0
            arr = np.rint(arr[..., :3] * a + 255.0 * (1 - a)).astype(np.uint8)
        return np.ascontiguousarray(arr)
    return np.array(open_image(source, None, 3), dtype=np.uint8)


def warp_matrix(m: np.ndarray) -> np.ndarray:
    """A continuous-coordinate map (dst -> src) as the pixel-index matrix OpenCV's
    ``warpAffine(..., WARP_INVERSE_MAP)`` expects."""
    m = np.asarray(m, dtype=np.float64)[:2]
    a, t = m[:, :2], m[:, 2]
    return np.hstack([a, (a @ np.array([0.5, 0.5]) + t - 0.5)[:, None]])


def _region(photo: np.ndarray, m: np.ndarray, out_side: float, margin: float):
    """The part of ``photo`` around frame ``m`` (photo -> frame), reduced with area averaging so
    the frame is at most ``out_side`` pixels; returns (image, map photo -> image)."""
    import cv2

    h, w = photo.shape[:2]
    corners = apply(invert(m), [[0, 0], [FRAME, 0], [0, FRAME], [FRAME, FRAME]])
    side = FRAME / math.hypot(m[0, 0], m[1, 0])
    lo = corners.min(0) - margin * side
    hi = corners.max(0) + margin * side
    x0, y0 = max(0, int(math.floor(lo[0]))), max(0, int(math.floor(lo[1])))
    x1, y1 = min(w, int(math.ceil(hi[0]))), min(h, int(math.ceil(hi[1])))
    if x1 <= x0 or y1 <= y0:  # the frame lies outside the photo: a 1-pixel region at the nearest edge
        x0, y0 = min(max(0, x0), w - 1), min(max(0, y0), h - 1)
        x1, y1 = x0 + 1, y0 + 1
    crop = photo[y0:y1, x0:x1]
    g = min(1.0, out_side / side)
    shift = np.array([[1.0, 0, -x0], [0, 1.0, -y0]])
    if g < 1.0:
        nw, nh = max(1, round((x1 - x0) * g)), max(1, round((y1 - y0) * g))
        crop = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA)
        shift = np.array([[nw / (x1 - x0), 0, 0], [0, nh / (y1 - y0), 0]]) @ np.vstack([shift, [0, 0, 1]])
    return crop, shift


def render_face(photo: np.ndarray, m: np.ndarray, size: int = FRAME, supersample: int = 4) -> np.ndarray:
    """The frame of ``m`` (photo -> frame) cut out of ``photo`` as ``(size, size, 3)`` uint8: the
    region is area-reduced, warped to ``supersample * size`` and reduced with Pillow's bicubic
    filter (as CelebA's 64x64 faces were made); outside the photo the edge is repeated."""
    import cv2
    from PIL import Image

    big = supersample * size
    region, to_region = _region(photo, m, big, 0.1)
    # big-frame -> region: region <- photo <- frame <- big-frame
    k = FRAME / big
    big_to_frame = np.array([[k, 0, 0], [0, k, 0]])
    dst_to_src = compose(to_region, compose(invert(m), big_to_frame))
    out = cv2.warpAffine(region, warp_matrix(dst_to_src), (big, big), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(Image.fromarray(out).resize((size, size), Image.Resampling.BICUBIC))


#: Detectors tried in turn until one finds a face: OpenCV's bundled cascade file, minNeighbors,
#: and the crop box relative to its face box (side, centre offset in box sides), measured on
#: 800 CelebA 64x64 training faces (enlarged 3x): the frontal cascades' boxes agree with
#: photo.FACE_BOX_SCALE; the profile cascade (faces turned to one side, tried mirrored too) is
#: the last resort.
DETECTORS = (
    ("haarcascade_frontalface_default.xml", 5, FACE_BOX_SCALE, FACE_BOX_OFFSET),
    ("haarcascade_frontalface_alt2.xml", 3, 1.455, (0.0, -0.142)),
    ("haarcascade_frontalface_alt.xml", 3, 1.444, (0.0, -0.141)),
    ("haarcascade_profileface.xml", 3, 1.239, (-0.133, -0.096)),
)
#: A refinement whose last step still moves the eyes by more than this (frame pixels) did not
#: converge: probably not a face; the next candidate is tried.
CONVERGED = 1.0
#: Large photos are first searched (default cascade, upright) at this longest side.
FAST_SIDE = 512
_CASCADES: dict = {}


def _coarse(box: Sequence[float], angle_deg: float = 0.0, centre_of_rotation=(0.0, 0.0), scale: float = FACE_BOX_SCALE, offset=FACE_BOX_OFFSET, mirrored: bool = False) -> np.ndarray:
    """Photo -> frame from a detector box (found in the photo turned by ``angle_deg`` about
    ``centre_of_rotation``; the box is in the turned photo's coordinates)."""
    x, y, w, h = box
    side = scale * w
    cx = x + w / 2 + (-offset[0] if mirrored else offset[0]) * w
    cy = y + h / 2 + offset[1] * w
    k = FRAME / side
    turned_to_frame = np.array([[k, 0, FRAME / 2 - k * cx], [0, k, FRAME / 2 - k * cy]])
    if not angle_deg:
        return turned_to_frame
    import cv2

    photo_to_turned = cv2.getRotationMatrix2D(tuple(float(c) for c in centre_of_rotation), angle_deg, 1.0)
    return compose(turned_to_frame, photo_to_turned)


def _find(gray: np.ndarray, index: int) -> list:
    """Boxes ``(x, y, w, h, mirrored)`` of detector ``index``, largest first."""
    if index == 0:
        return [(*b, False) for b in detect_faces(gray)]
    import cv2

    name, neighbours = DETECTORS[index][:2]
    if name not in _CASCADES:
        c = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, name))
        _CASCADES[name] = None if c.empty() else c
    cascade = _CASCADES[name]
    if cascade is None:
        return []
    h, w = gray.shape
    min_side = max(20, min(h, w) // 12)
    out = []
    for mirrored in (False, True) if "profile" in name else (False,):
        g = np.ascontiguousarray(gray[:, ::-1]) if mirrored else gray
        for x, y, bw, bh in cascade.detectMultiScale(g, scaleFactor=1.1, minNeighbors=neighbours, minSize=(min_side, min_side)):
            out.append((int(w - x - bw) if mirrored else int(x), int(y), int(bw), int(bh), mirrored))
    return sorted(out, key=lambda b: b[2] * b[3], reverse=True)


def _detect(photo: np.ndarray, work_side: int):
    """Groups of candidate faces, each a list of (box in photo pixels, coarse transform), largest
    first: first the default cascade on the photo reduced to :data:`FAST_SIDE` (a quarter of the
    pixels: most faces in large photos are found there), then each detector at ``work_side``,
    upright and turned by :data:`RETRY_ANGLES`."""
    import cv2

    h, w = photo.shape[:2]
    tries = [(FAST_SIDE, 0, (0.0,))] if max(h, w) > 1.5 * FAST_SIDE and work_side > FAST_SIDE else []
    tries += [(work_side, i, (0.0,) + RETRY_ANGLES) for i in range(len(DETECTORS))]
    grays: dict = {}
    for side, index, angles in tries:
        if side not in grays:
            f = min(1.0, side / max(h, w))
            small = cv2.resize(photo, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA) if f < 1 else photo
            grays[side] = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        gray = grays[side]
        sx, sy = w / gray.shape[1], h / gray.shape[0]
        to_photo = np.array([[sx, 0, 0], [0, sy, 0]])  # small -> photo
        gh, gw = gray.shape
        centre = (gw / 2, gh / 2)
        _, _, scale, offset = DETECTORS[index]
        for angle in angles:
            rot = cv2.getRotationMatrix2D(centre, angle, 1.0)
            turned = cv2.warpAffine(gray, rot, (gw, gh), borderMode=cv2.BORDER_REPLICATE) if angle else gray
            boxes = _find(turned, index)
            if not boxes:
                continue
            group = []
            for x, y, bw, bh, mirrored in boxes:
                m = compose(_coarse((x, y, bw, bh), angle, centre, scale, offset, mirrored), invert(to_photo))
                c = np.array([x + bw / 2, y + bh / 2])
                if angle:
                    c = apply(invert(rot), [c])[0]
                c = c * (sx, sy)
                side_px = bw * sx
                group.append(((float(c[0] - side_px / 2), float(c[1] - bh * sy / 2), float(side_px), float(bh * sy)), m))
            yield group


def _refine(photo: np.ndarray, m: np.ndarray, steps: int, net=None) -> tuple[np.ndarray, float]:
    """:func:`refine`, also returning how far the last step moved the eyes (frame pixels)."""
    import cv2
    import torch

    net = net or load_align_net()
    last = 0.0
    for _ in range(steps):
        region, to_region = _region(photo, m, 1.5 * FRAME, 0.6)
        window_to_region = compose(to_region, invert(m))
        win = cv2.warpAffine(region, warp_matrix(window_to_region), (FRAME, FRAME), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT_101)
        x = torch.from_numpy(win).permute(2, 0, 1)[None].float() / 255.0
        with torch.inference_mode():
            p = net.predict(x)[0].double().numpy()
        q = params_to_matrix(*p)
        last = float(np.linalg.norm(apply(q, REF_POINTS[:2]) - REF_POINTS[:2], axis=1).max())
        m = compose(q, m)
    return m, last


def refine(photo: np.ndarray, m: np.ndarray, steps: int = STEPS, net=None) -> np.ndarray:
    """Refine a coarse photo -> frame transform with the alignment network, ``steps`` times."""
    return _refine(photo, m, steps, net)[0]


def locate(photo: np.ndarray, steps: int = STEPS, work_side: int = WORK_SIDE, face: int = 0):
    """Detect and refine: ``(box, transform, faces)`` of the chosen face (``face`` = 0: the
    largest that the network converges on; else that index among the first detector's faces), or
    ``None`` when no face is found. ``faces``: all boxes of that detector, largest first."""
    best = None
    for group in _detect(photo, work_side):
        boxes = [g[0] for g in group]
        if face:
            if face >= len(group):
                raise IndexError(len(group))
            return group[face][0], _refine(photo, group[face][1], steps)[0], boxes
        for box, m in group[:3]:
            m2, last = _refine(photo, m, steps)
            if last <= CONVERGED or steps == 0:
                return box, m2, boxes
            if best is None or last < best[0]:
                best = (last, box, m2, boxes)
    return None if best is None else best[1:]


def _already_framed(m: np.ndarray, side: int, tolerance: float = ALREADY_FRAMED) -> bool:
    corners = np.array([[0, 0], [side, 0], [0, side], [side, side]], float)
    found = apply(invert(m), corners * (FRAME / side))
    return float(np.abs(found - corners).max()) <= tolerance * side


def _whole(arr: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    if arr.shape[0] == size:
        return arr.copy()
    return np.asarray(Image.fromarray(arr).resize((size, size), Image.Resampling.BICUBIC))


def align(
    photo: Any,
    size: int = FRAME,
    *,
    box: Sequence[float] | None = None,
    face: int = 0,
    steps: int = STEPS,
    min_face: int = MIN_FACE,
    work_side: int = WORK_SIDE,
    name: str | None = None,
) -> AlignedFace:
    """Find the face in ``photo`` and cut it out in CelebA's framing (see the module docstring).

    ``photo``: a path, bytes, PIL image or ``(H, W, 3)`` uint8 array (:func:`read_photo`).
    ``box``: ``(x, y, w, h)`` of the face in photo pixels, to skip detection (e.g. when none is
    found); ``face``: which detected face, 0 = the largest. Raises ``ValueError`` with one line
    naming the photo and the problem: no face found, face too small, ``face`` out of range.
    """
    label = name or (Path(str(photo)).name if isinstance(photo, (str, os.PathLike)) else (_describe(photo) if not isinstance(photo, np.ndarray) else "photo"))
    arr = read_photo(photo)
    h, w = arr.shape[:2]
    if box is not None:
        bx = tuple(float(v) for v in box)
        if len(bx) != 4 or bx[2] <= 0 or bx[3] <= 0 or bx[0] >= w or bx[1] >= h or bx[0] + bx[2] <= 0 or bx[1] + bx[3] <= 0:
            raise ValueError(f"{label}: the box {box} is not a face box (x, y, w, h) inside the {w}x{h} photo")
        if bx[2] < min_face:
            raise ValueError(f"{label}: the face is too small ({bx[2]:.0f} px across; at least {min_face} px are needed)")
        faces = [bx]
        m = refine(arr, _coarse(bx), steps)
        how = f"face box given at x={bx[0]:.0f} y={bx[1]:.0f} size {bx[2]:.0f}"
    else:
        try:
            found = locate(arr, steps, work_side, face)
        except RuntimeError as e:
            raise ValueError(f"{label}: {e}; give the face box by hand") from None
        except IndexError as e:
            raise ValueError(f"{label}: face {face} asked for, but {e} found (0 = the largest)") from None
        if found is None:
            raise ValueError(f"{label}: no face found in the {w}x{h} photo (looked for frontal and profile faces, upright and turned by 25 degrees); give the face box by hand (x, y, w, h)")
        bx, m, faces = found
        if bx[2] < min_face:
            raise ValueError(f"{label}: the face is too small ({bx[2]:.0f} px across; at least {min_face} px are needed)")
        how = f"face found at x={bx[0]:.0f} y={bx[1]:.0f} size {bx[2]:.0f} px"
        if len(faces) > 1:
            how += f" ({len(faces)} faces; used {'the largest' if face == 0 else f'number {face}'})"
    framed = w == h and _already_framed(m, w)
    if framed:  # e.g. a CelebA 64x64 face: used whole, so it comes back unchanged
        m = np.array([[FRAME / w, 0.0, 0.0], [0.0, FRAME / w, 0.0]])
    inv = invert(m)
    marks = apply(inv, REF_POINTS)
    out = AlignedFace(
        face=_whole(arr, size) if framed else render_face(arr, m, size),
        transform=m,
        box=tuple(float(v) for v in bx),  # type: ignore[arg-type]
        landmarks={k: (float(p[0]), float(p[1])) for k, p in zip(("left_eye", "right_eye", "mouth"), marks)},
        photo_size=(w, h),
        faces=list(faces),
    )
    if framed:
        out.message = f"{label}: {how}; photo already framed, used whole"
    else:
        out.message = f"{label}: {how}; aligned (turned {out.angle:+.1f} degrees, face frame {out.face_side:.0f} px)"
    return out
