"""Stable decoding far from the data: no NaN, no Inf, no blown-up blotches.

Why decoding blows up. An affine coupling's reverse divides by ``scale = sigmoid(raw + 2)``. On
the bundled face model (CelebA 64x64, L=4 K=8), the smallest scale any coupling uses on 500 real
validation faces is 0.10 and the couplings' activations stay within +-8.8 (measured by encoding
them). A latent moved far along an attribute
direction (amount 3) or sampled at temperature 1.2 leads a coupling network, fed activations only
2-3x beyond that range, to output scales of 1e-6 and below; the next layers amplify further and
a region of the image decodes to saturated high-contrast noise (blotches; before the clamps in
``glowcore.nn.coupling``, black squares of NaN). Tightening the scale floor or clamping activations
uniformly does not cure it without breaking exact invertibility on data: the amplification
compounds over many layers, each only moderately out of range.

What this module does (:func:`stable_reverse`, used by ``Glow.decode``), in one pass from the top
level down, for the bundled model at most one level decoded twice:

1. decode each level exactly (the clamped reverse of ``glowcore.nn.coupling``: never NaN or Inf) and
   look at its output: an item whose activations between levels exceed :data:`TROUBLE` has blown
   up at that level (with the bundled model, 400 real CelebA faces stay within +-5.7 there and
   samples at T <= 1.3 within +-9; a blown-up pass jumps to 1e3-1e4 at once);
2. such an item is decoded again with the *damped* reverse pass (:func:`damped_reverse` with
   :data:`DAMPING`: every coupling's scale bounded below by ``min_scale``, its outputs
   soft-clamped: identity up to ``knee``, smoothly saturating at ``limit``) from the first level
   whose output was out of range (beyond :data:`SUSPECT`, about twice what data reaches; often
   the level that blew up) down to the image; the levels above it stay exact;
3. an item that blows up only in the image (blown pixels: outputs more than one full range
   outside the image, below -1 or above 2 for images in [0, 1]) is decoded again damped from the
   first level whose output was out of range (beyond :data:`SUSPECT`), else the last level only,
   and pasted into the blown region (dilated by 2 px and feathered), or over the whole image when
   more than 30% of it blew up; at most :data:`ACCEPT_FRACTION` of stray blown pixels with every
   level in range are only clamped (what the bundled model gives at T=1.3 now and then: 1-12
   pixels; decoding the last level again damped, 40% of a decode, fixed a third of them in the
   case measured: 0.29% -> 0.20% of the pixels at the limit). Models whose activations
   drift out of range gradually rather than jump (the tiny test models far out) pay up to a
   second pass here.

Exact decodings are never touched (amount-0 edits and encoded photos round-trip exactly). The
cost is bounded: a far edit of the bundled model costs a plain decode plus the levels decoded
twice, at most about half a decode (the last, 64x64 level alone is about 40%), where the previous ladder of re-decodes (exact, then the whole pass damped
mildly, then more strongly, ...) cost 4-6x a plain decode (issue 18). Both the exact and the
damped levels run as frozen graphs (:mod:`glowcore.decoding.compiled`; :func:`prepare` builds them). On
far edits of the bundled model (Smiling, Male and Eyeglasses at 1.5-5, T=1.5 samples, the
encoding of a noise image) the strongest rung of :data:`LADDER`, applied from the level that blew
up, leaves at most 0.5% of the pixels beyond the range, where the milder rungs leave 10-97%
when the top levels blew up; so it is the one damping used.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from ..base import modes
from ..base.progress import CancelToken
from .compiled import reverse_graph

__all__ = ["Damping", "LADDER", "DAMPING", "TROUBLE", "SUSPECT", "BLOWN_THRESHOLD", "damped_reverse", "blown_pixels", "stable_reverse", "hint_holds", "prepare"]

#: Preprocessed outputs (image - 0.5) beyond this magnitude count as blown: pixel values below -1
#: or above 2 for images in [0, 1].
BLOWN_THRESHOLD = 1.5
#: More than this fraction of blown pixels: use the damped decoding for the whole image.
WHOLE_IMAGE_FRACTION = 0.3
#: At most this fraction of blown pixels, every level in range: the exact image, clamped.
ACCEPT_FRACTION = 0.005
#: Activations between levels beyond this magnitude: the exact pass has blown up at that level.
TROUBLE = 100.0
#: Beyond this (about 3x what real faces reach, 2x samples at T=1.3) a level's output is out of range: if the image
#: then blows up, it is decoded again damped from that level.
SUSPECT = 16.0
#: One face takes :func:`_one` (the same picture with less bookkeeping); False: the general way
#: (tests compare the two).
_one_face = True


@dataclass(frozen=True)
class Damping:
    """Bounds for :meth:`glowcore.nn.coupling.AffineCoupling.reverse`: the coupling scale is bounded
    below by ``min_scale``, outputs are kept as they are up to ``|x| <= knee`` and smoothly
    saturate towards ``limit``."""

    min_scale: float
    knee: float
    limit: float

    @property
    def min_raw(self) -> float:
        return -math.log(1.0 / self.min_scale - 1.0)

    def soft_clamp(self, x: Tensor) -> Tensor:
        # knee-clamped x plus the squashed excess: x itself (+ 0.0) where |x| <= knee; four
        # elementwise passes (where / sign / abs made nine, measurable in the damped graphs)
        width = self.limit - self.knee
        inner = x.clamp(-self.knee, self.knee)
        return inner + width * torch.tanh((x - inner) * (1.0 / width))


#: From mild to strong. Activations are ActNorm-normalised (unit variance on data), so the knees
#: are in units of standard deviations.
LADDER = (Damping(0.1, 16.0, 24.0), Damping(0.3, 8.0, 12.0), Damping(0.5, 5.0, 8.0))
#: The damping :func:`stable_reverse` decodes blown-up levels with (the milder rungs, applied from
#: the level that blew up, still leave most pixels blown when that is one of the top levels).
DAMPING = LADDER[-1]


@contextlib.contextmanager
def damped_reverse(damping: Damping) -> Iterator[None]:
    """Within the block, affine couplings reverse with ``damping`` (in this thread only)."""
    with modes.reverse_damping(damping):
        yield


def blown_pixels(x: Tensor) -> Tensor:
    """Per-pixel mask ``(B, 1, H, W)`` of blown outputs of ``Glow.reverse`` (or non-finite ones)."""
    return (~torch.isfinite(x) | (x.abs() > BLOWN_THRESHOLD)).any(1, keepdim=True)


def _level_runner(model, latent, damping: Damping | None) -> Callable[[int, Tensor | None, Tensor], Tensor]:
    """``run(i, h, eps)``: level ``i`` of the reverse pass (``damping``: with it), through the
    frozen graph of that level for this batch size where there is one (glowcore.decoding.compiled), else
    eagerly."""
    n = len(latent.levels)
    scope = (lambda: damped_reverse(damping)) if damping is not None else contextlib.nullcontext
    graphs: dict[int, Any] = {}

    def run(i: int, h: Tensor | None, eps: Tensor) -> Tensor:
        b = eps.shape[0]
        with scope():
            if b not in graphs:
                graphs[b] = reverse_graph(model, latent if b == latent.batch_size else latent[:b])
            if graphs[b] is not None:
                graph = graphs[b].graphs[n - 1 - i]
                return graph(eps) if h is None else graph(h, eps)
            return model.reverse_level(i, h, eps)

    return run


def _catch_up(run, latent, inputs: dict, start: int, level: int, rows: Tensor) -> Tensor | None:
    """The input of ``level`` for items ``rows``, decoded with ``run`` from the exact pass's
    input of level ``start`` (``start == level``: that input itself)."""
    state = inputs[start][rows] if inputs[start] is not None else None
    for j in range(start, level, -1):
        state = run(j, state, latent.levels[j][rows])
    return state


def prepare(model, latent) -> None:
    """Build the frozen graphs (glowcore.decoding.compiled) that :func:`stable_reverse` uses for latents
    shaped like ``latent``: the exact and the damped ones (about a second each). Call it in
    inference mode, where a first far edit should not wait for them."""
    reverse_graph(model, latent)
    with damped_reverse(DAMPING):
        reverse_graph(model, latent)


def _peak(h: Tensor) -> Tensor:
    """Per item, the largest magnitude in ``h`` (NaN where there is a NaN): one operation."""
    return torch.linalg.vector_norm(h.flatten(1), ord=math.inf, dim=1)


def _top(h: Tensor) -> float:
    """The largest magnitude in ``h`` (NaN where there is a NaN): one operation and one read."""
    return float(torch.linalg.vector_norm(h, ord=math.inf))


def _one(latent, exact, damped, damp_from: int | None, cancel: CancelToken | None, report: dict | None) -> Tensor:
    """:func:`stable_reverse` of one face, without the bookkeeping for batches (per level an
    index copy, a ``where``, a ``nonzero``, a ``unique``: each a small operation that waits for
    the GIL while a GUI thread runs Python, see glowcore.decoding.compiled): the same decisions
    on the same tensors, so the same picture, bit for bit (tests/glowcore/test_stable.py compares
    it with the general way). Per level one check (``_peak``); the exact pass's inputs are
    kept by reference for the catch-up."""
    n = len(latent.levels)
    levels = latent.levels
    inputs: dict[int, Tensor | None] = {}  # each level's input in the exact pass
    h: Tensor | None = None
    suspect: int | None = None  # the first level beyond SUSPECT
    trouble = None
    start: int | None = None  # the level the damping started at
    hinted = False
    for i in range(n - 1, -1, -1):
        if cancel is not None and i < n - 1:
            cancel.check()
        if start is not None:
            h = damped(i, h, levels[i])
            continue
        inputs[i] = h
        if i == damp_from:  # the caller expects the exact pass to blow up here: damped at once
            hinted = True
        else:
            h = exact(i, h, levels[i])
            if i == 0:
                break
            top = _top(h)
            if top <= SUSPECT:
                continue
            if suspect is None:
                suspect = i
            if top <= TROUBLE:  # out of range, not blown up (NaN counts as blown up)
                continue
            trouble = (i, top)
        # damped from the first level out of range down to this one, then on to the image
        start = i if suspect is None else suspect
        h = inputs[start]
        for j in range(start, i - 1, -1):
            h = damped(j, h, levels[j])
    if report is not None:
        report.update(damped_from=start, trouble=trouble, hinted=hinted)
    assert h is not None
    fill = dict(nan=0.0, posinf=BLOWN_THRESHOLD, neginf=-BLOWN_THRESHOLD)
    if start is not None:  # damped: nothing exact to merge
        return torch.nan_to_num(h, **fill).clamp(-BLOWN_THRESHOLD, BLOWN_THRESHOLD)
    if suspect is None and _top(h) <= BLOWN_THRESHOLD:
        return h  # nothing blew up: the exact decoding, untouched
    bad = blown_pixels(h)
    frac = float(bad.flatten(1).float().mean(1)[0])
    x = torch.nan_to_num(h, **fill)
    # a few stray pixels with every level in range are only clamped (see the module docstring);
    # more, or after a level out of range: decoded again damped from the first level that looked
    # out of range (else the last level alone), pasted into the blown region
    if frac > ACCEPT_FRACTION or (frac > 0 and suspect is not None):
        s = 0 if suspect is None else suspect
        state = inputs[s]
        for j in range(s, -1, -1):
            state = damped(j, state, levels[j])
        mask = F.max_pool2d(bad.to(x.dtype), 5, stride=1, padding=2)  # dilate by 2 px
        mask = F.avg_pool2d(mask, 5, stride=1, padding=2, count_include_pad=False)  # feather
        if frac > WHOLE_IMAGE_FRACTION:
            mask[:] = 1.0
        x = x * (1 - mask) + torch.nan_to_num(state, **fill) * mask
    return x.clamp(-BLOWN_THRESHOLD, BLOWN_THRESHOLD)


def hint_holds(model, latent, damp_from: int, cancel: CancelToken | None = None) -> bool:
    """Whether :func:`stable_reverse` of one face without the hint damps where ``damp_from``
    made it damp, checked with the exact levels from the top down to ``damp_from`` only (the
    part of a full check the hint skipped): True where the exact pass blows up (beyond
    :data:`TROUBLE`) at ``damp_from`` or above it, so the picture decoded with the hint is the
    full check's, bit for bit. False otherwise (also for ``damp_from`` 0, the image, which the
    full check treats otherwise): then only a full decoding says what the picture is.
    ``cancel`` is checked between levels."""
    n = len(latent.levels)
    if latent.batch_size != 1 or not 0 < damp_from < n:
        return False
    exact = _level_runner(model, latent, None)
    h: Tensor | None = None
    for i in range(n - 1, damp_from - 1, -1):
        if cancel is not None and i < n - 1:
            cancel.check()
        h = exact(i, h, latent.levels[i])
        if not _top(h) <= TROUBLE:  # blown up (NaN included): the damping starts where it did
            return True
    return False


def stable_reverse(
    model, latent, cancel: CancelToken | None = None, damp_from: int | None = None, report: dict | None = None
) -> Tensor:
    """``model.reverse(latent)`` that never blows up (see the module docstring): items that stay
    in range are exact; an item that blew up is decoded again with :data:`DAMPING` from the
    first level out of range. Finite everywhere. ``cancel`` is checked between levels.

    ``damp_from``: a level index the caller expects the exact pass to blow up at (the previous
    picture of a slider drag did, see ``explorer.engine``): every item not yet damped is decoded
    damped from that level down without trying the exact pass there first (the levels above are
    decoded exactly and checked as usual). It saves the exact levels that would be thrown away;
    where the exact pass would in fact have stayed in range there, the picture is the damped one
    (never blown up, but not the exact decoding): callers re-check without it now and then.
    ``report``: a dict that receives ``damped_from`` (the highest level decoded damped, or
    ``None``), ``trouble`` (``(level, peak)`` of the first exact level beyond :data:`TROUBLE`, or
    ``None``) and ``hinted`` (whether ``damp_from`` took effect).

    The common case (nothing out of range) adds two small operations per level to the plain
    pass: each torch operation issued from Python waits for the GIL, which a busy GUI thread
    holds (see glowcore.decoding.compiled), so the bookkeeping below starts only when a level is out of
    range; one face (the explorer's live picture) takes :func:`_one`, the same decisions without
    the batch bookkeeping. A hinted picture can be checked afterwards with :func:`hint_holds`."""
    if latent.shapes != model.latent_shapes:
        raise ValueError(f"latent shapes {latent.shapes} do not match this model's {model.latent_shapes}")
    n, batch, dev = len(latent.levels), latent.batch_size, latent.device
    exact = _level_runner(model, latent, None)
    damped = _level_runner(model, latent, DAMPING)
    if batch == 1 and _one_face:
        return _one(latent, exact, damped, damp_from if damp_from is not None and 0 <= damp_from < n else None, cancel, report)
    alive: Tensor | None = None  # items still decoded exactly (None: all)
    suspect: Tensor | None = None  # per item, the first level beyond SUSPECT (-1: none; None: none at all)
    idx: Tensor | None = None  # items decoded with damping ...
    hd: Tensor | None = None  # ... and their states
    inputs: dict[int, Tensor | None] = {}  # each level's input in the exact pass
    h: Tensor | None = None
    everyone = False  # idx holds every item in order (then eps and hd need no indexing)
    trouble = None
    hinted = False
    for i in range(n - 1, -1, -1):
        if cancel is not None and i < n - 1:
            cancel.check()
        eps = latent.levels[i]
        new: Tensor | None = None
        inputs[i] = h
        if alive is None or bool(alive.any()):
            if i == damp_from:  # the caller expects the exact pass to blow up here: damped at once
                hinted = True
                if alive is None:
                    alive = torch.ones(batch, dtype=torch.bool, device=dev)
                if suspect is None:
                    suspect = torch.full((batch,), -1, dtype=torch.long, device=dev)
                suspect = torch.where((suspect < 0) & alive, i, suspect)
                new = alive.nonzero().flatten()
            else:
                h = exact(i, inputs[i], eps)
            if i > 0 and new is None:
                peak = _peak(h)
                top = float(peak.max())
                if not top <= SUSPECT:  # out of range somewhere (NaN included)
                    if alive is None:
                        alive = torch.ones(batch, dtype=torch.bool, device=dev)
                    if suspect is None:
                        suspect = torch.full((batch,), -1, dtype=torch.long, device=dev)
                    suspect = torch.where((suspect < 0) & alive & ~(peak <= SUSPECT), i, suspect)
                    new = (alive & ~(peak <= TROUBLE)).nonzero().flatten()
                    new = new if new.numel() else None
                    if new is not None and trouble is None:
                        trouble = (i, top)
        if new is not None or idx is not None:  # damped from the first level out of range
            assert alive is not None and suspect is not None
            if new is not None:
                states = [] if hd is None else [hd]
                rows_all = [] if idx is None else [idx]
                for s in suspect[new].unique().tolist():
                    rows = new[suspect[new] == s]
                    state = _catch_up(damped, latent, inputs, s, i, rows)
                    if state is not None:
                        states.append(state)
                    rows_all.append(rows)
                alive[new] = False
                idx = torch.cat(rows_all) if len(rows_all) > 1 else rows_all[0]
                everyone = idx.numel() == batch and bool((idx == torch.arange(batch, device=dev)).all())
                state_in = (torch.cat(states) if len(states) > 1 else states[0]) if states else None
            else:  # the same items as at the level above, in the same order
                state_in = hd
            hd = damped(i, state_in, eps if everyone else eps[idx])
    if report is not None:
        report.update(damped_from=None if suspect is None or idx is None else int(suspect[idx].max()), trouble=trouble, hinted=hinted)
    if everyone:  # every item damped (the usual far edit of one face): nothing exact to merge
        return torch.nan_to_num(hd, nan=0.0, posinf=BLOWN_THRESHOLD, neginf=-BLOWN_THRESHOLD).clamp(-BLOWN_THRESHOLD, BLOWN_THRESHOLD)
    assert h is not None
    any_alive = alive is None or bool(alive.any())
    if idx is None and suspect is None and float(_peak(h).max()) <= BLOWN_THRESHOLD:
        return h  # nothing blew up: the exact decoding, untouched
    blown = torch.zeros(batch, dtype=torch.bool, device=dev)
    if any_alive:
        bad = blown_pixels(h)
        frac = bad.flatten(1).float().mean(1)
        # a few stray pixels with every level in range are only clamped (see the module
        # docstring); more, or after a level out of range: damped
        blown = frac > ACCEPT_FRACTION
        if suspect is not None:
            blown |= (frac > 0) & (suspect >= 0)
        if alive is not None:
            blown &= alive
    fill = dict(nan=0.0, posinf=BLOWN_THRESHOLD, neginf=-BLOWN_THRESHOLD)
    x = torch.nan_to_num(h, **fill) if any_alive else hd.new_zeros((batch, *hd.shape[1:]))  # type: ignore[union-attr]
    if idx is not None:
        x[idx] = torch.nan_to_num(hd, **fill)  # type: ignore[arg-type]
    # blown only in the image: decoded again damped from the first level that looked out of range
    # (else the last level alone), pasted into the blown region
    start = suspect.clamp_min(0) if suspect is not None else torch.zeros(batch, dtype=torch.long, device=dev)
    for s in start[blown].unique().tolist():
        rows = (blown & (start == s)).nonzero().flatten()
        state = damped(0, _catch_up(damped, latent, inputs, s, 0, rows), latent.levels[0][rows])
        mask = F.max_pool2d(bad[rows].to(x.dtype), 5, stride=1, padding=2)  # dilate by 2 px
        mask = F.avg_pool2d(mask, 5, stride=1, padding=2, count_include_pad=False)  # feather
        mask[bad[rows].flatten(1).float().mean(1) > WHOLE_IMAGE_FRACTION] = 1.0
        x[rows] = x[rows] * (1 - mask) + torch.nan_to_num(state, **fill) * mask
    return x.clamp(-BLOWN_THRESHOLD, BLOWN_THRESHOLD)
