"""The engine's side of a user's photo at full size (issue #14): open, composite, save, fills
painted on the photo (filled at the model's resolution, pasted back), and the photo's detail for
a morph exported at a chosen size. A mixin of :class:`explorer.engine.Engine`,
run in the worker thread only (it imports torch); the photo work itself is in
:mod:`explorer.photo_session` and glowcore."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Optional

import numpy as np
import torch

import glowcore
from glowcore.base.progress import CancelToken, ProgressFn

from .state import Snapshot


class PhotoMixin:
    """Needs from the engine: ``_need_model``, ``store``, ``edited_latent``, ``inpaint`` (which
    keeps the candidates in ``_candidates`` / ``_candidates_batch``)."""

    _photos: OrderedDict  # photo sessions by latent id, newest last (open_photo, adopt_photo_fill)
    _photo_faces: OrderedDict  # faces made from a photo (materialize) -> its session
    _candidates: Optional[np.ndarray]
    _candidates_batch: Optional[int]
    #: The last fill painted on a photo: (batch, session, the photo as filled (edits pasted),
    #: its alignment with that face, the painted mask at the photo's size).
    _photo_fill: Optional[tuple] = None
    #: Photo versions kept (opened photos and fills pasted into them): undo goes back through these.
    PHOTOS_KEPT = 6

    # (explorer.photo_session: align, composite, save; added for issue #14's photo editing)
    def open_photo(self, source: Any, label: str, box: Optional[tuple] = None, centre_crop: bool = False, progress: Optional[ProgressFn] = None, face: int = 0,
                   reframe: Optional[int] = None) -> Optional[Any]:
        """Read, align and encode a photo larger than the model; it becomes the current photo
        (a :class:`~explorer.photo_session.PhotoSession`). None for a photo not larger than the
        model or a one-channel model: the caller frames it as a face only (:meth:`load_photo`).
        ``reframe``: the latent id of an open photo version, whose pixels (fills pasted into it
        included) are framed again instead of reading ``source``."""
        from . import photo_session as ps

        m = self._need_model()
        if progress:
            progress(0, 3, "reading the photo")
        old = self._photos.get(reframe) if reframe is not None else None
        if old is not None:
            arr, icc, exif = old.array, old.icc, old.exif
            source = old.path if old.path is not None else source
        else:
            arr, icc, exif = ps.read(source)
        if m.config.channels != 3 or max(arr.shape[:2]) <= m.config.image_size:
            return None
        if progress:
            progress(1, 3, "finding the face")
        aligned, found = ps.align_face(arr, m.config.image_size, label, box, centre_crop, face)
        if progress:
            progress(2, 3, "encoding")
        lat = m.encode(np.array(aligned.face[None], dtype=np.uint8))
        with torch.inference_mode():
            recon = glowcore.to_uint8(m.decode(lat))[0]
        path = str(source) if isinstance(source, (str, os.PathLike)) else None
        ph = ps.PhotoSession(arr, aligned, self.store(lat), recon, path, label, aligned.message, found, icc, exif, tuple(ps.frame_corners(aligned)))
        self._keep_photo(ph)  # a few are kept: a save asked for before another photo opened still works
        if progress:
            progress(3, 3, "done")
        return ph

    def _photo_of(self, spec: Snapshot) -> Any:
        ph = self._photos.get(spec.face.latent_id) if spec.face is not None else None
        if ph is None:
            raise ValueError("this face is not that of a photo still open")
        return ph

    def _photo_edit(self, spec: Snapshot) -> Optional[np.ndarray]:
        """The edited face of the photo, exact decoding (None: no edit)."""
        if not spec.amounts:
            return None
        with torch.inference_mode():
            return glowcore.to_uint8(self._need_model().decode(self.edited_latent(spec)))[0]

    def photo_patch(self, spec: Snapshot, scale: float = 1.0, spread: bool = True) -> Optional[tuple[bool, Any]]:
        """For the display: ``(True, (x0, y0, x1, y1, pixels))`` the changed region of the open photo with
        the face of ``spec`` pasted back, ``(True, None)`` no change, or None when that photo is no
        longer kept (stale: nothing to show)."""
        from . import photo_session as ps

        ph = self._photos.get(spec.face.latent_id) if spec.face is not None else None
        if ph is None:
            return None
        return True, ps.composite_patch(ph, self._photo_edit(spec), scale, spread)

    def photo_composite(self, spec: Snapshot, spread: bool = True) -> np.ndarray:
        """The open photo at full size with the face of ``spec`` pasted back (exact decoding)."""
        from . import photo_session as ps

        ph = self._photo_of(spec)
        return ps.composite(ph, self._photo_edit(spec), spread)

    def save_photo(self, spec: Snapshot, path: str, quality: int = 95, overwrite_input: bool = False, spread: bool = True) -> str:
        """Write the full-size edited photo (see :func:`explorer.photo_session.save`)."""
        from . import photo_session as ps

        return ps.save(self.photo_composite(spec, spread), path, self._photo_of(spec), quality, overwrite_input)

    def _photo_detail(self, latent_id: int, side: int) -> Optional[np.ndarray]:
        """The detail of the photo a keyframe comes from at ``side`` px (its aligned face minus
        the enlarged reconstruction; glowcore.ops.morphsize), or None for a face not from a photo."""
        from glowcore.ops.morphsize import MAX_SIZE, photo_detail

        ph = self._photos.get(latent_id) or self._photo_faces.get(latent_id)
        if ph is None or side > MAX_SIZE:
            return None
        return photo_detail(ph.array, ph.aligned.transform, ph.reconstruction, side)

    def _keep_photo(self, ph: Any) -> None:
        self._photos[ph.latent_id] = ph
        while len(self._photos) > self.PHOTOS_KEPT:
            self._photos.popitem(last=False)

    # ------------------------------------------------------------------ fills painted on the photo
    def inpaint_photo(self, spec: Snapshot, mask: np.ndarray, candidates: int = 4, steps: Optional[int] = None, temperature: float = 0.7,
                      seed: int = 0, progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None, batch: Optional[int] = None,
                      spread: bool = True) -> np.ndarray:
        """Fill the ``mask`` painted on the open photo of ``spec`` (bool, the photo's size): it is
        carried into the face's frame at the model's resolution (glowcore.ops.paste.mask_to_face)
        and the face (with the edits of ``spec``) is filled there; returns the candidates (faces,
        model size). Painted pixels outside the frame are left alone, as the CLI does; a mask that
        does not touch the frame is refused. ``spread``: how the edits are pasted into the photo
        that is filled (as on screen, glowcore.ops.paste.paste). :meth:`adopt_photo_fill` pastes
        one back."""
        from dataclasses import replace

        from glowcore.ops.align import render_face
        from glowcore.ops.paste import mask_to_face

        from . import photo_session as ps

        ph = self._photo_of(spec)
        mask = np.asarray(mask, dtype=bool)
        h, w = ph.array.shape[:2]
        if mask.shape != (h, w):
            raise ValueError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {w}x{h}")
        if not mask.any():
            raise ValueError("paint the area to fill in on the photo first (the mask is empty)")
        edited = self._photo_edit(spec)
        aligned = ph.aligned
        base = ph.array
        if edited is not None:  # fill the photo as shown: its face with the edits pasted back
            base = ps.composite(ph, edited, spread)
            aligned = replace(aligned, face=render_face(base, aligned.transform, aligned.size))
        face_mask = mask_to_face(aligned, mask)
        if not face_mask.any():
            raise ValueError(f"the painted area does not touch the face: the model fills only the face's frame (the blue square, "
                             f"{aligned.size} px across); nothing was changed")
        out = self.inpaint(aligned.face, face_mask, candidates=candidates, steps=steps, temperature=temperature, seed=seed,
                           progress=progress, cancel=cancel, batch=batch)
        self._photo_fill = (batch, ph, base, aligned, mask)
        return out

    def adopt_photo_fill(self, index: int, batch: Optional[int] = None) -> Any:
        """Paste candidate ``index`` of the photo inpainting ``batch`` into the full photo
        (glowcore.ops.paste.paste_fill: the painted pixels inside the face's frame get the
        enlarged fill, feathered into the photo around them; everywhere else the photo is
        bit-identical). The result is a new version of the photo, aligned as before and encoded:
        a :class:`~explorer.photo_session.PhotoSession` of its own (the old one is kept, for undo)."""
        from dataclasses import replace

        from glowcore.ops.align import render_face
        from glowcore.ops.paste import paste_fill

        from . import photo_session as ps

        fill = self._photo_fill
        if fill is None or self._candidates is None or fill[0] != self._candidates_batch:
            raise ValueError("that fill is no longer available; paint on the photo and fill in again")
        if batch is not None and batch != fill[0]:
            raise ValueError("those candidates were replaced by newer ones; pick one of the candidates shown now")
        if not 0 <= index < len(self._candidates):
            raise ValueError("that inpainting candidate is no longer available; run inpainting again")
        _, ph, base, aligned, mask = fill
        cand = self._candidates[index]
        if cand.shape[-1] != 3:
            raise ValueError("fills on a photo need a colour model")
        photo = paste_fill(aligned, cand, base, mask)
        m = self._need_model()
        face_aligned = replace(aligned, face=render_face(photo, aligned.transform, aligned.size))
        lat = m.encode(np.array(face_aligned.face[None], dtype=np.uint8))
        with torch.inference_mode():
            recon = glowcore.to_uint8(m.decode(lat))[0]
        message = f"{ph.label}: candidate #{index + 1} pasted into the photo (filled areas are at the model's resolution)"
        new = ps.PhotoSession(photo, face_aligned, self.store(lat), recon, ph.path, ph.label, message, ph.found, ph.icc, ph.exif, ph.frame)
        self._keep_photo(new)
        return new
