"""The torch side of the explorer: owns the model and does every tensor operation.

Only the model worker (:mod:`explorer.worker`) imports this module, inside its own thread, the
first time it needs it; the GUI thread never imports torch. The engine speaks numpy: images are
uint8 ``(H, W, 3)`` arrays (``(H, W)`` for one-channel models); latents stay here, known to the
GUI by integer ids.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

import glowcore
from glowcore.decoding import compiled, stable
from glowcore.base.modes import fast_networks
from glowcore.base.threads import ThreadPolicy, calibrate, calibrate_precision, env_threads
from glowcore.model import Glow
from glowcore.latent import Latent
from glowcore.ops.editing import direction_group, slider_limit
from glowcore.base.progress import CancelToken, Cancelled

from .engine_live import LiveMixin, env_lanes
from .engine_photo import PhotoMixin
from .protocol import ExportParams, InterpParams, ModelInfo
from .state import DirectionInfo, Snapshot

__all__ = ["Engine", "CancelToken", "Cancelled"]

ProgressFn = Callable[[int, int, str], None]


def default_threads() -> int:
    """CPU threads for the model: all cores but one (for the GUI), at most 8, at least 1."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def default_fast() -> bool:
    """Whether live pictures use the fast bf16 networks: where the CPU computes bf16 natively
    (pixels within a few thousandths of the exact decoding; speed-up measured in docs/benchmarks.md), unless
    ``GLOW_EXACT_DECODE=1``. Exports, photos' encodings and saved latents are always exact."""
    from glowcore.nn.coupling import fast_networks_supported

    return fast_networks_supported() and os.environ.get("GLOW_EXACT_DECODE", "") in ("", "0")


def env_bf16() -> Optional[bool]:
    """``GLOW_BF16``: ``1`` the bf16 networks where the CPU computes bf16 natively, ``0`` float32,
    without measuring; unset (or anything else): measured (``calibrate_precision``)."""
    return {"1": True, "0": False}.get(os.environ.get("GLOW_BF16", "").strip())


#: The morph preview keeps its decoded frames (pictures) up to this many bytes.
FRAME_CACHE_BYTES = 64 << 20


def _direction_tooltip(name: str, info: dict) -> str:
    parts = []
    for key in ("description", "source", "method", "positives", "negatives", "n_pos", "n_neg", "accuracy", "explained_variance"):
        if key in info:
            parts.append(f"{key.replace('_', ' ')}: {info[key]}")
    if info.get("fixed"):  # the model's default conditioning (glowcore.ops.directions)
        parts.append(f"holds fixed: {', '.join(info['fixed'])}")
    if info.get("bounds"):  # how far an edit may take a face (glowcore.ops.editing.bounded_amounts)
        parts.append("bounded: moves a face at most to " + " and ".join(
            f"{v:+.2f}" for v in info["bounds"] if v is not None) + " along it (beyond, the model's pictures break)")
    return "\n".join(parts)


class Engine(LiveMixin, PhotoMixin):
    """The model and everything computed with it. Used by the worker's thread; a second render lane
    (``explorer.render_lane``) may call :meth:`render` beside one of the worker's renders, and
    nothing else (the caches both touch are locked; each has its own drag hint)."""

    def __init__(self, device: Optional[str] = None, threads: Optional[int] = None, fast: Optional[bool] = None, lanes: Optional[int] = None) -> None:
        # Called in the worker thread, which does the work. The thread count: ``threads`` (the
        # --threads option or the engine/threads setting), else GLOW_THREADS, else measured once
        # the first face is shown (glowcore.base.threads.calibrate; until then all cores but one).
        self.device = torch.device(device) if device else glowcore.default_device()
        if threads:
            self.threads = ThreadPolicy(int(threads), "requested")
        elif env_threads():
            self.threads = ThreadPolicy(env_threads() or 1, "GLOW_THREADS")
        else:
            self.threads = ThreadPolicy(default_threads(), "default")
        torch.set_num_threads(self.threads.threads)
        self._calibrate_pending = self.threads.source == "default" and self.device.type == "cpu"
        env = env_bf16() if fast is None else None  # GLOW_BF16, unless ``fast`` was given
        on = bool(fast) if fast is not None else (env is not False and default_fast())
        self.fast = on and self.device.type == "cpu"
        # bf16 networks or float32: measured once too, where bf16 is native and nothing was asked
        self._precision_pending = fast is None and env is None and self.fast
        self.precision_ms: dict[str, float] = {}  # each path's fastest decode, once measured
        # renders at once, 1 or 2: given, else GLOW_RENDER_LANES, else None (LiveMixin.render_lanes decides)
        self.lanes = lanes if lanes is not None else env_lanes()
        # a second render lane (explorer.render_lane) renders beside the worker: the caches it shares
        self._cache_lock = threading.RLock()
        self.model: Optional[Glow] = None
        self._latents: dict[int, Latent] = {}
        self._ids = itertools.count(1)
        self._base_cache: OrderedDict = OrderedDict()
        self._image_cache: OrderedDict = OrderedDict()
        self._interp_cache: Optional[tuple[Any, Latent]] = None
        # the morph preview's decoded frames, for the morph in _interp_cache: index -> picture
        self._frames: dict[int, np.ndarray] = {}
        self._frames_key: Any = None
        self._scrub: list[int] = []  # the last previewed frame indices (newest last), for prefetching
        self._last_interactive = ""  # "render" or "preview": what the user did last
        self.prefetched_frames = 0  # morph frames decoded while idle (for benchmarks)
        self._candidates: Optional[np.ndarray] = None
        self._candidates_batch: Optional[int] = None  # which inpainting made them (the worker's command id)
        self.info: Optional[ModelInfo] = None
        self._graphs_pending = False
        self._shown_since_open = False
        self._photos: OrderedDict = OrderedDict()  # photo sessions by latent id, newest last (open_photo)
        self._photo_faces: OrderedDict = OrderedDict()  # faces made from a photo (materialize) -> its session

    # ------------------------------------------------------------------ model
    def device_label(self) -> str:
        if self.device.type == "cuda":
            try:
                return f"CUDA ({torch.cuda.get_device_name(self.device)})"
            except Exception:  # pragma: no cover - driver oddities
                return "CUDA"
        if self.device.type == "mps":
            return "Apple MPS"
        n = torch.get_num_threads()
        how = "" if self.threads.source == "default" else f" {self.threads.source}"
        lanes = ", 2 renders at once" if self.render_lanes() > 1 else ""
        return f"CPU ({n} thread{'s' if n != 1 else ''}{how}{', bf16 networks' if self.fast else ''}{lanes})"

    def open_model(self, path: Optional[str], progress: Optional[ProgressFn] = None) -> ModelInfo:
        """Load a model (folder, .safetensors file, or None for the bundled one) and make it current."""
        t0 = time.perf_counter()
        if progress:
            progress(0, 2, "reading the model")
        model = glowcore.load_model(path, device=self.device)
        if progress:
            progress(1, 2, "warming up")
        # One decode to warm up kernels and the eval-mode caches, so the first face is quick. The
        # frozen graphs (glowcore.decoding.compiled, ~1 s to trace) are built later, when idle (idle_work).
        with torch.inference_mode(), compiled.no_build():
            model.decode(model.sample_latent(1, 0.7, seed=0), fast=self.fast)
        if progress:
            progress(2, 2, "ready")  # the last point where a cancel (or an error) keeps the old model
        self.model = model
        self._graphs_pending = 2  # the exact and the damped decoding graphs
        self._shown_since_open = False
        self._latents.clear()
        self._clear_caches()
        src = Path(model.source_path) if getattr(model, "source_path", None) else Path(str(path or "model"))
        name = src.name if src.name not in ("best", "final", "model") else f"{src.parent.name}/{src.name}"
        c = model.config
        self.info = ModelInfo(
            path=str(src),
            name=name,
            description=model.describe(),
            image_size=c.image_size,
            channels=c.channels,
            levels=c.levels,
            dim=model.dim,
            device=self.device_label(),
            directions=self.direction_infos(),
            metadata=dict(model.metadata or {}),
            load_seconds=time.perf_counter() - t0,
        )
        return self.info

    @property
    def graphs_pending(self) -> Any:
        """Whether the decoding graphs of the model are still to be built (by :meth:`idle_work`)."""
        return self._graphs_pending

    def _need_model(self) -> Glow:
        if self.model is None:
            raise RuntimeError("no model is open; use File > Open model")
        return self.model

    def direction_infos(self) -> tuple[DirectionInfo, ...]:
        m = self._need_model()
        out = []
        for name in m.directions:
            info = m.direction_info.get(name, {}) or {}
            out.append(DirectionInfo(name, direction_group(name, info), slider_limit(name, info), _direction_tooltip(name, info)))
        return tuple(out)

    def _clear_caches(self) -> None:
        with self._cache_lock:
            self._base_cache.clear()
            self._image_cache.clear()
        self._interp_cache = None
        self._frames, self._frames_key, self._scrub = {}, None, []
        self.reset_hint()
        self.reset_lanes()
        self._candidates = None

    # ------------------------------------------------------------------ latents
    def store(self, latent: Latent) -> int:
        i = next(self._ids)
        self._latents[i] = latent.detach().to(self.device)
        return i

    def latent(self, latent_id: int) -> Latent:
        try:
            return self._latents[latent_id]
        except KeyError:
            raise ValueError("that face belongs to a model that is no longer open") from None

    def base_latent(self, spec: Snapshot) -> Latent:
        m = self._need_model()
        if spec.face is None:
            raise ValueError("no face selected")
        key = spec.base_key()
        with self._cache_lock:
            hit = self._base_cache.get(key)
            if hit is not None:
                self._base_cache.move_to_end(key)
                return hit
            if spec.face.kind == "seed":
                lat = m.sample_latent(1, spec.temperature, seed=spec.face.seed, detail_temperature=spec.detail_temperature)
            else:
                lat = self.latent(spec.face.latent_id)  # type: ignore[arg-type]
            self._base_cache[key] = lat
            while len(self._base_cache) > 16:
                self._base_cache.popitem(last=False)
            return lat

    def coarse_levels(self) -> tuple[int, ...]:
        n = self._need_model().config.levels
        return tuple(range(-max(1, n // 2), 0))

    def edited_latent(self, spec: Snapshot) -> Latent:
        m = self._need_model()
        base = self.base_latent(spec)
        amounts = {k: v for k, v in spec.amounts if k in m.directions and v != 0.0}
        if not amounts:
            return base
        from glowcore.ops import directions

        # The locks are held on top of what each direction holds by default (its info's "fixed"
        # list): locking an attribute never releases one the model holds (glowcore's fixed_sets).
        locks = tuple(f for f in spec.fixed if f in m.directions and f not in amounts)
        levels = self.coarse_levels() if spec.coarse_only else None
        return directions.edit(m, base, amounts, also_fixed=locks, levels=levels)

    # ------------------------------------------------------------------ images
    def decode_images(self, latent: Latent, cancel: Optional[CancelToken] = None) -> np.ndarray:
        """Latent -> uint8 (B, H, W, C) numpy, for display (the fast networks when ``self.fast``);
        ``cancel`` is checked between the model's levels."""
        m = self._need_model()
        with torch.inference_mode(), (compiled.no_build() if self._graphs_pending else contextlib.nullcontext()):
            return glowcore.to_uint8(m.decode(latent, fast=self.fast, cancel=cancel))

    def idle_work(self) -> bool:
        """Work worth doing while nothing is asked, one step a call: once the first face of a
        newly opened model is rendered, build its frozen decoding graphs (glowcore.decoding.compiled;
        about a second), then choose the thread count by measurement (once per engine, unless a
        count was given: glowcore.base.threads), then bf16 networks or float32 for the live
        pictures, by measurement too (once per engine, where bf16 is native and neither was asked
        for: ``calibrate_precision``), then build the damped decoding graphs far edits use
        (glowcore.decoding.stable); after that, while the morph preview is in use, decode its next frame
        (:meth:`_prefetch_frame`). Returns whether it did anything."""
        if self.model is None or not self._shown_since_open:
            return False  # the first face comes first
        if not self._graphs_pending:
            return self._prefetch_frame()
        m = self.model
        lat = m.sample_latent(1, 0.7, seed=0)
        with torch.inference_mode(), fast_networks(self.fast):
            if self._graphs_pending == 2:
                self._graphs_pending = 1
                m.decode(lat, fast=self.fast)
            elif self._calibrate_pending:
                self._calibrate_pending = False
                self.threads = calibrate(lambda: m.decode(lat, fast=self.fast))
            elif self._precision_pending:
                self._precision_pending = False
                self.fast, self.precision_ms = calibrate_precision(lambda f: m.decode(lat, fast=f))
            else:
                try:
                    stable.prepare(m, lat)
                finally:
                    self._graphs_pending = 0  # done (also when it failed: decoding works without)
        return True

    def _image(self, arr: np.ndarray) -> np.ndarray:
        return arr[..., 0] if arr.shape[-1] == 1 else arr

    def render(self, spec: Snapshot, with_before: bool = False, cancel: Optional[CancelToken] = None, lane: Any = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """The picture of ``spec`` and, if asked, of its unedited face. ``cancel`` can stop the
        decoding between levels (raising ``Cancelled``): the worker drops a render that a newer
        request has made stale. ``lane``: a second render thread's ``engine_live.LiveLane`` (its own drag
        hint), for a render beside the worker's; safe alongside one render of the worker's."""
        latent = self.edited_latent(spec)
        img = self._image(lane.decode(spec, latent, cancel)[0] if lane is not None else self._decode_live(spec, latent, cancel)[0])
        self._shown_since_open = True
        self._last_interactive = "render"
        before = None
        if with_before:
            key = spec.base_key()
            with self._cache_lock:
                before = self._image_cache.get(key)
            if before is None:
                before = img if not spec.amounts else self._image(self.decode_images(self.base_latent(spec))[0])
                with self._cache_lock:
                    self._image_cache[key] = before
                    while len(self._image_cache) > 8:
                        self._image_cache.popitem(last=False)
        return img, before

    def materialize(self, spec: Snapshot) -> tuple[int, np.ndarray]:
        """Store the edited latent of ``spec`` as a new face; returns its id and picture. A face
        made from an open photo remembers the photo (a morph keyframe carries its detail)."""
        lat = self.edited_latent(spec)
        new_id = self.store(lat)
        ph = self._photos.get(spec.face.latent_id) if spec.face is not None else None
        if ph is not None:
            self._photo_faces[new_id] = ph
            while len(self._photo_faces) > 32:
                self._photo_faces.popitem(last=False)
        return new_id, self._image(self.decode_images(lat)[0])

    def load_photo(self, source: Any, progress: Optional[ProgressFn] = None) -> tuple[int, np.ndarray, str]:
        """Frame and encode a photo (path or encoded bytes). Returns (latent id, picture, message)."""
        m = self._need_model()
        from glowcore.ops.photo import load_photo

        if progress:
            progress(0, 2, "framing the photo")
        arr, message = load_photo(source, m.config.image_size, frame_face=True, channels=m.config.channels)
        if progress:
            progress(1, 2, "encoding")
        latent_id, img = self.adopt(arr)
        if progress:
            progress(2, 2, "done")
        return latent_id, img, message

    def adopt(self, image: np.ndarray) -> tuple[int, np.ndarray]:
        """Encode a uint8 picture as a new face."""
        m = self._need_model()
        arr = image if image.ndim == 3 else image[..., None]
        lat = m.encode(np.array(arr[None], dtype=np.uint8))  # a writable copy
        return self.store(lat), self._image(self.decode_images(lat)[0])

    # ------------------------------------------------------------------ analysis
    def analyse(self, spec: Snapshot) -> tuple[dict[str, float], Optional[float]]:
        """Projections of the face of ``spec`` on every direction, and its bits/dim."""
        m = self._need_model()
        lat = self.edited_latent(spec)
        proj: dict[str, float] = {}
        if m.directions:
            from glowcore.ops import directions

            for name, v in directions.project(m, lat).items():
                proj[name] = float(np.asarray(v).reshape(-1)[0])
        with torch.inference_mode():
            x = m.decode(lat, fast=self.fast)  # the picture on screen
            bpd = float(m.bits_per_dim(x, noise=False)[0])
        return proj, (bpd if math.isfinite(bpd) else None)

    # ------------------------------------------------------------------ interpolation
    def interp_latents(self, keyframes: Sequence[int], params: InterpParams) -> Latent:
        if len(keyframes) < 2:
            raise ValueError("add at least two keyframes")
        key = (tuple(keyframes), params)
        if self._interp_cache is not None and self._interp_cache[0] == key:
            return self._interp_cache[1]
        from glowcore.ops.interpolate import interpolate

        keys = Latent.cat([self.latent(k) for k in keyframes])
        frames = interpolate(keys, params.frames, mode=params.mode, ease=params.ease, loop=params.loop, pingpong=params.pingpong)
        self._interp_cache = (key, frames)
        return frames

    def _frame(self, frames: Latent, i: int) -> np.ndarray:
        """Frame ``i`` of the morph in the interpolation cache, decoded once (kept in memory up to
        :data:`FRAME_CACHE_BYTES`): scrubbing back and forth shows frames seen before at once."""
        key = self._interp_cache[0] if self._interp_cache is not None else None
        if key != self._frames_key:
            self._frames, self._frames_key = {}, key
        hit = self._frames.get(i)
        if hit is None:
            hit = self._image(self.decode_images(frames[i])[0])
            if (len(self._frames) + 1) * hit.nbytes <= FRAME_CACHE_BYTES:
                self._frames[i] = hit
        return hit

    def preview(self, keyframes: Sequence[int], params: InterpParams, index: int) -> tuple[np.ndarray, int]:
        frames = self.interp_latents(keyframes, params)
        n = frames.batch_size
        i = min(max(0, int(index)), n - 1)
        img = self._frame(frames, i)
        self._scrub = (self._scrub + [i])[-2:]
        self._last_interactive = "preview"
        return img, n

    def _prefetch_frame(self) -> bool:
        """Idle work while the morph preview is in use: decode one frame not seen yet, the one the
        scrub reaches next at its last speed first, so the scrub finds it ready."""
        if self._last_interactive != "preview" or self._interp_cache is None or not self._scrub:
            return False
        frames = self._interp_cache[1]
        n = frames.batch_size
        if self._frames_key != self._interp_cache[0] or len(self._frames) >= n:
            return False
        size = next(iter(self._frames.values())).nbytes if self._frames else 0
        if (len(self._frames) + 1) * size > FRAME_CACHE_BYTES:
            return False  # as many frames as the memory bound holds
        here = self._scrub[-1]
        v = here - self._scrub[-2] if len(self._scrub) >= 2 else 1
        v = v if v else 1
        # the frame the scrub reaches next at its last speed first, then outwards from it,
        # ahead of the scrub before behind it
        target = min(max(here + v, 0), n - 1)
        todo = [i for i in range(n) if i not in self._frames]
        if not todo:
            return False
        i = min(todo, key=lambda j: (abs(j - target), (j - here) * v < 0))
        self._frame(frames, i)
        self.prefetched_frames += 1
        return True

    def filmstrip(self, keyframes: Sequence[int], params: InterpParams, count: int) -> list[tuple[int, np.ndarray]]:
        frames = self.interp_latents(keyframes, params)
        n = frames.batch_size
        idx = sorted(set(np.linspace(0, n - 1, num=min(count, n)).round().astype(int).tolist()))
        imgs = self.decode_images(Latent([t[idx] for t in frames.levels]))
        return [(i, self._image(a)) for i, a in zip(idx, imgs)]

    def export(
        self,
        keyframes: Sequence[int],
        params: InterpParams,
        eparams: ExportParams,
        path: str,
        progress: Optional[ProgressFn] = None,
        cancel: Optional[CancelToken] = None,
    ) -> str:
        m = self._need_model()
        if len(keyframes) < 2:
            raise ValueError("add at least two keyframes")
        from glowcore.ops.video import probe_video, render_morph

        keys = Latent.cat([self.latent(k) for k in keyframes])
        side = eparams.scale * m.config.image_size
        details = [self._photo_detail(k, side) for k in keyframes] if eparams.detail else []
        sized = eparams.filter == "smooth" and any(d is not None for d in details)
        render_morph(
            m, keys, path, frames=params.frames, fps=eparams.fps, mode=params.mode, ease=params.ease,
            loop=params.loop, pingpong=params.pingpong, scale=eparams.scale, filter=eparams.filter,
            progress=progress, cancel=cancel, size=side if sized else None, details=details if sized else None,
        )
        try:
            info = probe_video(path)
        except Exception:  # the file is written; a failing probe is not an error
            info = None
        size = os.path.getsize(path)
        extra = f", {info.frames} frames, {info.width}x{info.height}" if info is not None else ""
        if sized:
            extra += f"; the detail of {sum(d is not None for d in details)} photo(s) near their keyframes"
        return f"wrote {path} ({size / 1024:.0f} KiB{extra})"

    # ------------------------------------------------------------------ inpainting
    def inpaint(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        candidates: int = 4,
        steps: Optional[int] = None,
        temperature: float = 0.7,
        seed: int = 0,
        progress: Optional[ProgressFn] = None,
        cancel: Optional[CancelToken] = None,
        batch: Optional[int] = None,
    ) -> np.ndarray:
        """Fill the masked area of ``image``; returns ``candidates`` uint8 pictures.

        Pixels outside the mask are exactly those of ``image``. ``batch`` names this set of
        candidates for :meth:`adopt_candidate`.
        """
        m = self._need_model()
        from glowcore.ops.inpaint import inpaint

        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            raise ValueError("paint the area to fill in first (the mask is empty)")
        img = image if image.ndim == 3 else image[..., None]
        if img.shape[:2] != mask.shape:
            raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the picture is {img.shape[1]}x{img.shape[0]}")
        out = inpaint(
            m, img, mask, candidates=candidates, steps=steps, temperature=temperature, seed=seed,
            progress=progress, cancel=cancel,
        )
        arr = glowcore.to_uint8(out.detach().float().cpu())  # (N, H, W, C)
        arr = np.where(mask[None, :, :, None], arr, img[None])  # never touch unmasked pixels
        self._candidates, self._candidates_batch = arr, batch
        return np.stack([self._image(a) for a in arr])

    def adopt_candidate(self, index: int, batch: Optional[int] = None) -> tuple[int, np.ndarray]:
        """Make candidate ``index`` of the last inpainting the current face. With ``batch``, only
        if that inpainting is the one named ``batch`` (not a newer one that finished meanwhile)."""
        if self._candidates is not None and batch is not None and batch != self._candidates_batch:
            raise ValueError("those candidates were replaced by newer ones; pick one of the candidates shown now")
        if self._candidates is None or not 0 <= index < len(self._candidates):
            raise ValueError("that inpainting candidate is no longer available; run inpainting again")
        return self.adopt(self._candidates[index])

    # ------------------------------------------------------------------ directions
    def fit_direction(self, name: str, positives: Sequence[int], negatives: Sequence[int]) -> tuple[DirectionInfo, ...]:
        m = self._need_model()
        name = name.strip()
        if not name:
            raise ValueError("give the new direction a name")
        if len(positives) < 1 or len(negatives) < 1:
            raise ValueError("tag at least one face that has the attribute and one that lacks it")
        from glowcore.ops import directions

        pos = Latent.cat([self.latent(i) for i in positives])
        neg = Latent.cat([self.latent(i) for i in negatives])
        vec, info = directions.fit_example_direction(m, pos, neg, return_info=True)
        directions.add_directions(m, {name: vec}, {name: dict(info, kind="examples", source="tagged in the explorer")})
        return self.direction_infos()

    def principal(
        self,
        k: int = 8,
        samples: int = 256,
        temperature: float = 0.7,
        seed: int = 0,
        progress: Optional[ProgressFn] = None,
        cancel: Optional[CancelToken] = None,
    ) -> tuple[DirectionInfo, ...]:
        """Principal directions of faces the model samples; they join the sliders as pc1..pcK."""
        m = self._need_model()
        from glowcore.ops import directions

        images = []
        batch = 32
        for i in range(0, samples, batch):
            if cancel is not None:
                cancel.check()
            n = min(batch, samples - i)
            with torch.inference_mode():
                images.append(m.sample(n, temperature=temperature, seed=seed + i))
            if progress:
                progress(i + n, samples + 1, "sampling faces")
        imgs = torch.cat(images)
        if cancel is not None:
            cancel.check()
        pcs, infos = directions.principal_directions(m, imgs, k, progress=None, cancel=cancel, return_info=True)
        directions.add_directions(m, dict(pcs), {n: dict(infos[n], source=f"{samples} faces sampled at T={temperature:g}") for n in pcs})
        if progress:
            progress(samples + 1, samples + 1, "done")
        return self.direction_infos()

    def save_model(self, path: str) -> str:
        m = self._need_model()
        out = glowcore.save_model(m, path)
        return f"saved the model with {len(m.directions)} directions to {out}"
