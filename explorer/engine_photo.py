"""The engine's side of a user's photo at full size (issue #14): open, composite, save, and the
photo's detail for a morph exported at a chosen size. A mixin of :class:`explorer.engine.Engine`,
run in the worker thread only (it imports torch); the photo work itself is in
:mod:`explorer.photo_session` and glowcore."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Optional

import numpy as np
import torch

import glowcore
from glowcore.base.progress import ProgressFn

from .state import Snapshot


class PhotoMixin:
    """Needs from the engine: ``_need_model``, ``store``, ``edited_latent``."""

    _photos: OrderedDict  # photo sessions by latent id, newest last (open_photo)
    _photo_faces: OrderedDict  # faces made from a photo (materialize) -> its session

    # (explorer.photo_session: align, composite, save; added for issue #14's photo editing)
    def open_photo(self, source: Any, label: str, box: Optional[tuple] = None, centre_crop: bool = False, progress: Optional[ProgressFn] = None, face: int = 0) -> Optional[Any]:
        """Read, align and encode a photo larger than the model; it becomes the current photo
        (a :class:`~explorer.photo_session.PhotoSession`). None for a photo not larger than the
        model or a one-channel model: the caller frames it as a face only (:meth:`load_photo`)."""
        from . import photo_session as ps

        m = self._need_model()
        if progress:
            progress(0, 3, "reading the photo")
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
        self._photos[ph.latent_id] = ph  # a few are kept: a save asked for before another photo opened still works
        while len(self._photos) > 3:
            self._photos.popitem(last=False)
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

    def photo_patch(self, spec: Snapshot, scale: float = 1.0) -> Optional[tuple[bool, Any]]:
        """For the display: ``(True, (x0, y0, x1, y1, pixels))`` the changed region of the open photo with
        the face of ``spec`` pasted back, ``(True, None)`` no change, or None when that photo is no
        longer kept (stale: nothing to show)."""
        from . import photo_session as ps

        ph = self._photos.get(spec.face.latent_id) if spec.face is not None else None
        if ph is None:
            return None
        return True, ps.composite_patch(ph, self._photo_edit(spec), scale)

    def photo_composite(self, spec: Snapshot) -> np.ndarray:
        """The open photo at full size with the face of ``spec`` pasted back (exact decoding)."""
        from . import photo_session as ps

        ph = self._photo_of(spec)
        return ps.composite(ph, self._photo_edit(spec))

    def save_photo(self, spec: Snapshot, path: str, quality: int = 95, overwrite_input: bool = False) -> str:
        """Write the full-size edited photo (see :func:`explorer.photo_session.save`)."""
        from . import photo_session as ps

        return ps.save(self.photo_composite(spec), path, self._photo_of(spec), quality, overwrite_input)

    def _photo_detail(self, latent_id: int, side: int) -> Optional[np.ndarray]:
        """The detail of the photo a keyframe comes from at ``side`` px (its aligned face minus
        the enlarged reconstruction; glowcore.ops.morphsize), or None for a face not from a photo."""
        ph = self._photos.get(latent_id) or self._photo_faces.get(latent_id)
        if ph is None or side > 1024:
            return None
        from glowcore.ops.align import render_face
        from glowcore.ops.morphsize import resize

        return render_face(ph.array, ph.aligned.transform, side).astype(np.float32) - resize(ph.reconstruction, side)
