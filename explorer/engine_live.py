"""The engine's live picture for a slider move (issue 18): the far-edit drag hint. A mixin of
:class:`explorer.engine.Engine`, run in the worker thread only (it imports torch).

A far edit's exact decoding blows up at some level and ``glowcore.decoding.stable`` decodes it
damped from there; within a drag the next picture usually blows up at the same level, so it is
decoded damped from there at once (``stable_reverse``'s ``damp_from``), skipping the exact
attempt, and checked in full now and then (every :data:`HINT_RENEW`-th picture, the first after a
pause, and the last one once the drag pauses: :meth:`LiveMixin.check_hinted`).

Where two renders fit at once (:meth:`LiveMixin.render_lanes`: a CPU with a core for each
render and one for the GUI), the worker renders in a second thread too (``explorer.render_lane``), over the same model
and caches but with a drag hint of its own: a :class:`LiveLane` (:meth:`LiveMixin.new_lane`).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Optional

import numpy as np
import torch

from glowcore.base.modes import fast_networks
from glowcore.base.progress import CancelToken
from glowcore.decoding import compiled, stable
from glowcore.latent import Latent

from .state import Snapshot

#: A far edit's picture is decoded damped from the level where the previous picture of the same
#: drag blew up (``glowcore.decoding.stable.stable_reverse``'s ``damp_from``), skipping the exact attempt
#: there, only when that exact pass blew up by at least this much (the bundled model's blow-ups
#: reach 4e3-4e4 and fall by a factor of about 1.5 per slider step where they fade out, so a
#: few steps later the level is still out of range and the picture is the same) ...
HINT_MIN_PEAK = 10.0 * stable.TROUBLE
#: ... for at most this many pictures in a row (the next is checked in full and renews it; 4
#: before the drag's last picture was checked once it pauses: 8 cost the stacked drag ~2% less,
#: docs/explorer.md) ...
HINT_RENEW = 8
#: ... and only while the requests come this close together (a drag; after a pause, a full check).
HINT_GAP_S = 0.25


def env_lanes() -> Optional[int]:
    """``GLOW_RENDER_LANES`` (1 or 2) as a count of render lanes; None when unset or not 1 or 2."""
    text = os.environ.get("GLOW_RENDER_LANES", "").strip()
    return int(text) if text in ("1", "2") else None


class LiveMixin:
    """Needs from the engine: ``_need_model``, ``_image``, ``device``, ``fast`` and
    ``_graphs_pending``; keeps the hint in ``_hint`` and the last hinted picture in ``_unchecked``
    (both forgotten by :meth:`reset_hint`, with the engine's caches)."""

    # far-edit drags: (drag context, level, pictures left, time of the last picture)
    _hint: Optional[tuple[Any, int, int, float]] = None
    # the last picture, where decoded with the hint: (spec, drag context, latent, level, picture)
    _unchecked: Optional[tuple[Snapshot, Any, Latent, int, np.ndarray]] = None
    #: Once a drag pauses this long, its last picture, if decoded with the hint, is checked in
    #: full (:meth:`check_hinted`, the worker's idle work): a drag settles on the full check's
    #: picture.
    settle_s = 0.1
    hinted_renders = 0  # pictures decoded with the drag hint (for benchmarks)
    settle_checks = 0  # hinted pictures checked once the drag paused (for tests)
    device: Any
    fast: bool
    _graphs_pending: Any

    def _decode_live(self, spec: Snapshot, latent: Latent, cancel: Optional[CancelToken]) -> np.ndarray:
        """:meth:`decode_images` for the picture of a render, with the far-edit drag hint: where
        the previous picture of the same drag (same face, same sliders moved, see
        :data:`HINT_MIN_PEAK`) blew up in the exact pass at some level, this one is decoded damped
        from there at once (``glowcore.decoding.stable``; about a plain decode instead of 1.2-1.4x). Every
        :data:`HINT_RENEW`-th picture, and the first after a pause, is checked in full, and the
        last one once the drag pauses (:meth:`check_hinted`). The picture is never blown up either
        way, and it is the full check's picture unless the exact pass came back in range at that
        level within those few pictures (a peak of 1e3 falling below
        ``glowcore.decoding.stable.SUSPECT``): then up to :data:`HINT_RENEW` - 1 pictures of the
        drag are damped from there where the full check would damp from a lower level or not at
        all, and the picture it settles on is the full check's."""
        m = self._need_model()
        ctx = (spec.face, tuple(sorted(k for k, v in spec.amounts if v)), spec.fixed, spec.coarse_only)
        now = time.perf_counter()
        hint = None
        if self._hint is not None and self._hint[0] == ctx and self._hint[2] > 0 and now - self._hint[3] <= HINT_GAP_S:
            hint = self._hint[1]
        report: dict = {}
        latent = latent.to(self.device)
        with torch.inference_mode(), (compiled.no_build() if self._graphs_pending else contextlib.nullcontext()), fast_networks(self.fast):
            x = stable.stable_reverse(m, latent, cancel, damp_from=hint, report=report)
            # glowcore.to_uint8((x + 0.5).clamp(0, 1)) without its no-ops here (x is finite and
            # the clamp done): the same bytes in four fewer small operations
            arr = x.add(0.5).clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        done = time.perf_counter()
        self._unchecked = None
        if report.get("hinted"):
            assert self._hint is not None
            self.hinted_renders += 1
            self._hint = (ctx, self._hint[1], self._hint[2] - 1, done)
            self._unchecked = (spec, ctx, latent, self._hint[1], arr)
        elif report.get("trouble") is not None and report["trouble"][1] >= HINT_MIN_PEAK:
            # the level that blew up (levels above it stay exact and checked: one that goes out
            # of range is still where the damping starts, as without the hint)
            self._hint = (ctx, int(report["trouble"][0]), HINT_RENEW - 1, done)
        else:
            self._hint = None
        return arr

    def reset_hint(self) -> None:
        """Forget the drag hint and the picture decoded with it (a model opened, caches cleared)."""
        self._hint = None
        self._unchecked = None

    def unchecked_picture(self) -> bool:
        """Whether the last picture was decoded with the drag hint and not yet checked in full."""
        return self._unchecked is not None

    def check_hinted(self, cancel: Optional[CancelToken] = None) -> Optional[np.ndarray]:
        """Check the last picture, decoded with the drag hint, in full (the worker calls it once a
        drag has paused for :attr:`settle_s`): the exact levels the hint skipped
        (``glowcore.decoding.stable.hint_holds``; a level or two, a fraction of a decode) show
        whether it is the full check's picture. If so, the hint counts as renewed and ``None``
        is returned; if not, the picture decoded in full, or ``None`` where that turns out the
        same. ``cancel`` (a newer request) stops it between levels, leaving it unchecked."""
        u = self._unchecked
        if u is None:
            return None
        spec, ctx, latent, level, shown = u
        m = self._need_model()
        if cancel is not None:
            cancel.check()
        with torch.inference_mode(), (compiled.no_build() if self._graphs_pending else contextlib.nullcontext()), fast_networks(self.fast):
            holds = stable.hint_holds(m, latent, level, cancel)
        if holds:
            self._unchecked = None
            self.settle_checks += 1
            if self._hint is not None and self._hint[0] == ctx:
                self._hint = (ctx, level, HINT_RENEW - 1, time.perf_counter())
            return None
        self._hint = None
        full = self._decode_live(spec, latent, cancel)  # no hint now: the full check (clears _unchecked)
        self.settle_checks += 1
        return None if np.array_equal(full, shown) else self._image(full[0])

    def render_lanes(self) -> int:
        """How many renders may run at once (issue 18): 2 on a CPU with a core for each render's
        threads and one more for the GUI thread (``2 * threads + 1 <= cores``: 3 or more cores
        rendering on one thread), else 1. The engine's ``lanes`` (given to it, else
        ``GLOW_RENDER_LANES``) decides instead. Where a render takes about as long as the time
        between slider moves, one render thread makes each move wait for the render in progress;
        two take turns. On 2 cores the GUI thread's painting shares them with both renders, and
        two lanes measured no faster there (docs/explorer.md, "Two render lanes")."""
        asked = getattr(self, "lanes", None)
        if asked is not None:
            return 2 if asked >= 2 else 1
        if self.device.type != "cpu":
            return 1
        threads = getattr(getattr(self, "threads", None), "threads", 1)
        return 2 if 2 * threads + 1 <= (os.cpu_count() or 1) else 1

    def new_lane(self) -> "LiveLane":
        """A second render lane's live decoding: this engine's model, a drag hint of its own
        (forgotten with the engine's caches: :meth:`reset_lanes`)."""
        lane = LiveLane(self)
        self.lane_views = [*getattr(self, "lane_views", []), lane]
        return lane

    def reset_lanes(self) -> None:
        """Forget the second lanes' drag hints (a model opened, the caches cleared)."""
        for lane in getattr(self, "lane_views", []):
            lane.reset_hint()


class LiveLane(LiveMixin):
    """The live decoding of a second render thread (``explorer.render_lane``): the engine's model,
    device and decoding modes, its own far-edit drag hint (each lane sees every other picture of a
    drag, and checks the hint on its own). Used by one thread at a time: the lane's while it
    renders, the worker's for the settle check while the lane is idle."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine  # the hint, the picture and the counters start at LiveMixin's defaults

    @property
    def device(self) -> Any:  # type: ignore[override]
        return self._engine.device

    @property
    def fast(self) -> bool:  # type: ignore[override]
        return self._engine.fast

    @property
    def _graphs_pending(self) -> Any:  # type: ignore[override]
        return self._engine.graphs_pending

    def _need_model(self) -> Any:
        if self._engine.model is None:
            raise RuntimeError("no model is open; use File > Open model")
        return self._engine.model

    @staticmethod
    def _image(arr: np.ndarray) -> np.ndarray:
        return arr[..., 0] if arr.shape[-1] == 1 else arr

    def decode(self, spec: Snapshot, latent: Latent, cancel: Optional[CancelToken]) -> np.ndarray:
        """The picture of ``spec`` (uint8, ``(1, H, W, C)``), with this lane's drag hint."""
        return self._decode_live(spec, latent, cancel)

    def enter_thread(self) -> None:
        """Called once in the lane's thread: the engine's thread count there too."""
        torch.set_num_threads(max(1, torch.get_num_threads()))
