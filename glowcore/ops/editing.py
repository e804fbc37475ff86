"""Editing along the directions a model stores: :func:`edit` (move latents by amounts, holding
other directions fixed, per direction by default), :func:`edit_vector`, :func:`fixed_sets` (what
an edit holds) and :func:`project` (a latent's coordinate along each direction). The directions
themselves are fitted and stored by :mod:`glowcore.ops.directions` (which also offers these
names); see its docstring for the scale convention and conditioning. :func:`bounded_amounts`: how
far an edit may take each face (its direction's ``bounds``, measured by
``benchmarks/edit_bounds.py``); :func:`slider_limit`: how far a slider reaches (``slider_range``).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ..latent import Latent
from ..model import Glow

__all__ = ["edit", "edit_vector", "fixed_sets", "project", "slider_limit", "direction_group", "bounded_amounts", "coordinate_moves"]


def direction_group(name: str, info: Mapping[str, Any]) -> str:
    """``"principal"`` (GANSpace-style ``pcN``, or an info saying so), ``"custom"`` (fitted from
    examples, or made by a user) or ``"attribute"``: how the window groups the sliders."""
    kind = str(info.get("kind") or info.get("group") or info.get("source") or "").lower()
    if kind in ("principal", "pca") or (name.startswith("pc") and name[2:].isdigit()):
        return "principal"
    if kind in ("custom", "examples", "example", "user"):
        return "custom"
    return "attribute"


def slider_limit(name: str, info: Mapping[str, Any]) -> float:
    """How far (+-) a slider for direction ``name`` with this info reaches: its ``slider_range``
    (``[low, high]``: the larger magnitude; or one number), else the older keys ``range`` and
    ``limit`` (invalid entries, not finite or not positive, are skipped), else +-2 (+-3 for a
    principal direction): amount 1.0 being the typical difference between faces with and without
    the attribute (1 standard deviation for principal directions). How far an edit may take a
    face is the direction's ``bounds`` (:func:`bounded_amounts`), not the slider's range."""
    for key in ("slider_range", "range", "limit"):
        v = info.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
            return float(v)
        if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) and math.isfinite(x) for x in v):
            lim = float(max(abs(v[0]), abs(v[1])))
            if lim > 0:
                return lim
    return 3.0 if direction_group(name, info) == "principal" else 2.0


#: Where a bounded edit starts to bend: this fraction of the bound (below it the coordinate moves
#: exactly by the amount, beyond it it approaches the bound smoothly and never passes it).
BOUND_KNEE = 0.75


def _soft(u: np.ndarray, hi: float) -> np.ndarray:
    """R>=0 -> [0, hi): identity up to ``BOUND_KNEE * hi``, then a tanh approach to ``hi``."""
    k = BOUND_KNEE * hi
    return np.where(u <= k, u, k + (hi - k) * np.tanh((u - k) / (hi - k)))


def _soft_inv(c: np.ndarray, hi: float) -> np.ndarray:
    k = BOUND_KNEE * hi
    r = np.clip((c - k) / (hi - k), 0.0, 1.0 - 1e-9)
    return np.where(c <= k, c, k + (hi - k) * np.arctanh(r))


def _two_sided(x: np.ndarray, one_side: Callable[[np.ndarray, float], np.ndarray], lo: float | None, hi: float | None) -> np.ndarray:
    """``one_side(|x|, |bound|)`` (signed back) on each bounded side of 0; ``x`` itself on an
    unbounded side (``None``)."""
    out = x.copy()
    if hi is not None:
        out = np.where(x > 0, one_side(np.maximum(x, 0.0), hi), out)
    if lo is not None:
        out = np.where(x < 0, -one_side(np.maximum(-x, 0.0), -lo), out)
    return out


def coordinate_moves(info: Mapping[str, Any], amounts: np.ndarray) -> np.ndarray:
    """The moves along a direction (in units of its positive ``scale``: what :func:`project`
    reads) that ``amounts`` ask for: negative amounts at its ``scale_neg`` where it has one."""
    scale = float(info.get("scale", 1.0))
    if "scale_neg" in info and scale != 0:
        return np.where(amounts < 0, amounts * (float(info["scale_neg"]) / scale), amounts)
    return amounts


def bounded_amounts(model: Glow, latent: Latent, name: str, amounts: np.ndarray) -> np.ndarray:
    """The amounts (one per item, in units of the direction's positive scale) that move each
    item of ``latent`` toward ``coordinate + amount`` along direction ``name`` without passing
    its info's ``bounds`` ``[low, high]`` (coordinates as :func:`project` gives them; ``None``: no
    bound on that side): up to ``BOUND_KNEE`` of a bound the move is exactly the amount, beyond
    it the coordinate approaches the bound smoothly. A face already near a bound moves little
    further, one beyond it does not move further out; amount 0 never moves. The bound is on this
    direction's own move: other directions edited at the same time (and the conditioning's
    orthogonalisation) can shift the coordinate a little either way. Where the bounds come from:
    ``benchmarks/edit_bounds.py`` (how far each direction goes before faces break)."""
    b = model.direction_info.get(name, {}).get("bounds")
    if not b or (b[0] is None and b[1] is None):
        return amounts
    lo, hi = (None if v is None else float(v) for v in b)
    c = project(model, latent, [name])[name]
    if len(c) != len(amounts):
        c = np.broadcast_to(c, amounts.shape)
    moved = _two_sided(_two_sided(c, _soft_inv, lo, hi) + amounts, _soft, lo, hi) - c
    moved = np.where(amounts > 0, np.maximum(moved, 0.0), np.where(amounts < 0, np.minimum(moved, 0.0), 0.0))
    return np.minimum(np.abs(moved), np.abs(amounts)) * np.sign(amounts)


def _unknown(model: Glow, name: str) -> str:
    known = sorted(model.directions)
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    return f"unknown direction {name!r}; this model has {len(known)}" + (f": {shown}" if known else " (fit some with `glow directions`)")


def _scaled(model: Glow, name: str) -> Tensor:
    if name not in model.directions:
        raise ValueError(_unknown(model, name))
    scale = float(model.direction_info.get(name, {}).get("scale", 1.0))
    return model.directions[name].reshape(-1).double() * scale


def _level_mask(model: Glow, levels: Sequence[int] | None) -> Tensor | None:
    if levels is None:
        return None
    n = len(model.latent_shapes)
    levels = list(levels)
    for i in levels:
        if not isinstance(i, (int, np.integer)) or not -n <= int(i) < n:
            raise ValueError(f"level index {i!r} out of range: this model has {n} levels (0 = finest .. {n - 1} = coarsest, or -1 = coarsest)")
    template = Latent([torch.zeros(1, *s) for s in model.latent_shapes])
    return template.level_mask(int(i) for i in levels).flatten()[0].double()


def fixed_sets(
    model: Glow,
    names: Sequence[str],
    fixed: Sequence[str] | None = None,
    also_fixed: Sequence[str] = (),
) -> dict[str, list[str]]:
    """The directions an edit of each of ``names`` (edited together) holds fixed.

    * ``fixed=None`` (the default): each direction's own default, its info's ``fixed`` list,
      leaving out the directions edited in the same call (what is edited cannot also be held);
    * ``fixed=[...]``: the caller's set, for every edited direction, *instead of* the stored lists
      (``fixed=()`` edits each direction alone, as models without stored lists do); naming an
      edited direction is an error;
    * ``also_fixed``: held in addition, whichever of the two applies (the window's locks: a
      locked attribute is held on top of the model's defaults, so locking one never releases
      another); naming an edited direction is an error.

    Unknown names are a ``ValueError`` naming them (and for a stored list, the direction whose
    list it is).
    """
    names = list(names)
    for nm in names:
        if nm not in model.directions:
            raise ValueError(_unknown(model, nm))
    extra = list(dict.fromkeys(also_fixed))
    given = None if fixed is None else list(dict.fromkeys(fixed))
    for nm in extra + (given or []):
        if nm not in model.directions:
            raise ValueError(_unknown(model, nm))
    clash = sorted(set(names) & set(extra + (given or [])))
    if clash:
        raise ValueError(f"direction(s) {', '.join(clash)} cannot be both edited and kept fixed")
    out: dict[str, list[str]] = {}
    for nm in names:
        if given is None:
            stored = model.direction_info.get(nm, {}).get("fixed") or []
            missing = [f for f in stored if f not in model.directions]
            if missing:
                raise ValueError(f"direction {nm!r}: its stored 'fixed' list names {_names(missing)}, which this model does not have")
            base = [f for f in stored if f not in names]
        else:
            base = given
        out[nm] = list(dict.fromkeys(base + extra))
    return out


def _names(names: Sequence[str]) -> str:
    return ("unknown direction " if len(names) == 1 else "unknown directions ") + ", ".join(repr(n) for n in names)


def edit_vector(
    model: Glow,
    name: str,
    *,
    fixed: Sequence[str] | None = None,
    also_fixed: Sequence[str] = (),
    levels: Sequence[int] | None = None,
) -> Tensor:
    """The flat ``(D,)`` vector that amount 1.0 of ``name`` adds, after level restriction and
    orthogonalisation against the directions it holds fixed (restricted to the same levels):
    by default its info's ``fixed`` list; ``fixed`` and ``also_fixed`` as in :func:`fixed_sets`."""
    sets = fixed_sets(model, [name], fixed, also_fixed)
    return _edit_matrix(model, [name], sets, levels)[0].float()


#: The last edit matrices computed (:func:`_edit_matrix`), newest last: a slider drag edits along
#: the same directions, holding the same ones fixed, picture after picture, and orthogonalising
#: against a dozen held directions costs ~2 ms of a ~20 ms live render (issue 18).
_MATRICES: "OrderedDict[tuple, tuple[tuple, Tensor]]" = OrderedDict()
_MATRICES_MAX = 16
_MATRICES_LOCK = threading.Lock()


def _edit_matrix(model: Glow, names: Sequence[str], fixed: Mapping[str, Sequence[str]], levels: Sequence[int] | None) -> Tensor:
    """The edit vectors of ``names`` (rows), each made orthogonal to its own ``fixed[name]``.
    Remembered for the same model, names, fixed sets and levels while every direction involved is
    the same tensor, unmodified (its version), at the same scales; a copy is returned."""
    used = list(dict.fromkeys([*names, *(f for nm in names for f in fixed.get(nm, ()))]))
    key = (id(model), tuple(names), tuple(tuple(fixed.get(nm, ())) for nm in names), None if levels is None else tuple(int(i) for i in levels))
    state = tuple((model.directions[nm], _version(model.directions[nm]), model.direction_info.get(nm, {}).get("scale", 1.0)) for nm in used)
    if any(v is None for _, v, _ in state):  # a tensor without a version counter: not remembered
        return _compute_edit_matrix(model, names, fixed, levels)
    with _MATRICES_LOCK:
        hit = _MATRICES.get(key)
        if hit is not None and len(hit[0]) == len(state) and all(a[0] is b[0] and a[1:] == b[1:] for a, b in zip(hit[0], state)):
            _MATRICES.move_to_end(key)
            return hit[1].clone()
    vecs = _compute_edit_matrix(model, names, fixed, levels)
    with _MATRICES_LOCK:
        _MATRICES[key] = (state, vecs.clone())
        while len(_MATRICES) > _MATRICES_MAX:
            _MATRICES.popitem(last=False)
    return vecs


def _version(t: Tensor) -> int | None:
    try:
        return int(t._version)
    except RuntimeError:  # an inference-mode tensor keeps no version counter
        return None


def _compute_edit_matrix(model: Glow, names: Sequence[str], fixed: Mapping[str, Sequence[str]], levels: Sequence[int] | None) -> Tensor:
    mask = _level_mask(model, levels)
    vecs = torch.stack([_scaled(model, nm) for nm in names])
    if mask is not None:
        vecs = vecs * mask
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, nm in enumerate(names):
        groups.setdefault(tuple(fixed.get(nm, ())), []).append(i)
    for held, rows in groups.items():
        if held:
            vecs[rows] = _orthogonal(model, [names[i] for i in rows], vecs[rows], list(held), mask)
    return vecs


def _orthogonal(model: Glow, names: Sequence[str], vecs: Tensor, fixed: Sequence[str], mask: Tensor | None) -> Tensor:
    f = torch.stack([_scaled(model, nm) for nm in fixed])
    if mask is not None:
        f = f * mask
    keep = f.norm(dim=1) > 0
    if not bool(keep.any()):
        return vecs
    q, r = torch.linalg.qr(f[keep].T)
    q = q[:, r.diagonal().abs() > 1e-9 * float(r.diagonal().abs().max())]
    norms = vecs.norm(dim=1, keepdim=True)
    vecs = vecs - (vecs @ q) @ q.T
    new_norms = vecs.norm(dim=1, keepdim=True)
    for nm, a, b in zip(names, norms[:, 0], new_norms[:, 0]):
        if float(a) > 0 and float(b) <= 1e-6 * float(a):
            raise ValueError(f"direction {nm!r} lies within the span of the fixed direction(s) {', '.join(fixed)}; nothing is left to edit")
    return torch.where(new_norms > 0, vecs * (norms / new_norms.clamp_min(1e-300)), vecs)


def _amounts_matrix(names: Sequence[str], amounts: Mapping[str, Any], batch: int) -> tuple[np.ndarray, int]:
    cols = []
    n_out = batch
    for nm in names:
        a = np.asarray(amounts[nm], dtype=np.float64)
        if a.ndim > 1:
            raise ValueError(f"amount for {nm!r} must be a number or a 1-D sequence, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"amount for {nm!r} must be finite, got {amounts[nm]!r}")
        if a.ndim == 1:
            if a.shape[0] != batch and batch != 1:
                raise ValueError(f"{a.shape[0]} amounts for {nm!r} but the latent holds {batch} items")
            if batch == 1:
                if n_out not in (1, a.shape[0]):
                    raise ValueError("per-item amount sequences must all have the same length")
                n_out = a.shape[0]
        cols.append(a)
    mat = np.zeros((n_out, len(names)))
    for j, a in enumerate(cols):
        mat[:, j] = a
    return mat, n_out


def edit(
    model: Glow,
    latent: Latent,
    amounts: Mapping[str, Any],
    *,
    fixed: Sequence[str] | None = None,
    also_fixed: Sequence[str] = (),
    levels: Sequence[int] | None = None,
    bounded: bool = True,
) -> Latent:
    """Move latents along named directions: ``latent + sum(amount * edit vector)``.

    ``amounts`` maps direction names to a number, or to a sequence with one amount per latent
    item; a single latent with sequences of N amounts gives N edited copies (a batch of previews
    to decode at once). Directions held fixed stay unchanged (the edit vectors are made
    orthogonal to them, InterFaceGAN's conditional editing): with ``fixed=None`` (the default)
    the ones each edited direction's info lists under ``fixed`` (none for model files without
    such lists: each direction alone); an explicit ``fixed`` replaces those lists for every
    edited direction (``fixed=()``: each alone); ``also_fixed`` is held on top of either (see
    :func:`fixed_sets`). ``levels``: level indices the edit may touch (0 = finest, -1 = coarsest;
    default all). All amounts 0 return an exact copy. A direction whose info has ``bounds``
    moves each face at most to them (:func:`bounded_amounts`: exact up to ``BOUND_KNEE`` of a
    bound, then bending toward it), so that no amount takes a face where the model's pictures
    break; ``bounded=False`` adds the amounts as they are.
    """
    if not isinstance(latent, Latent):
        raise TypeError(f"expected a Latent, got {type(latent).__name__}")
    if latent.shapes != model.latent_shapes:
        raise ValueError(f"latent shapes {latent.shapes} do not match the model's {model.latent_shapes}")
    names = list(amounts)
    for nm in [*names, *(fixed or ()), *also_fixed]:
        if nm not in model.directions:
            raise ValueError(_unknown(model, nm))
    mat, n_out = _amounts_matrix(names, amounts, latent.batch_size)
    for j, nm in enumerate(names):  # negative amounts at the direction's own scale for removal
        mat[:, j] = coordinate_moves(model.direction_info.get(nm, {}), mat[:, j])
    base = latent if n_out == latent.batch_size else latent.repeat(n_out)
    if bounded:  # directions with measured bounds: each face moves at most to them (bounded_amounts)
        for j, nm in enumerate(names):
            if model.direction_info.get(nm, {}).get("bounds") and np.any(mat[:, j] != 0):
                mat[:, j] = bounded_amounts(model, base, nm, mat[:, j])
    nonzero = [j for j in range(len(names)) if np.any(mat[:, j] != 0)]
    if not nonzero:
        return base.clone()
    active = [names[j] for j in nonzero]
    # (a direction moved by 0 is not edited: it may be held fixed, by default or by the caller)
    vecs = _edit_matrix(model, active, fixed_sets(model, active, fixed, also_fixed), levels)
    delta = torch.from_numpy(mat[:, nonzero]) @ vecs  # (B, D) float64
    flat = base.flatten()
    edited = (flat.double() + delta.to(flat.device)).to(flat.dtype)
    return Latent.from_flat(edited, model.latent_shapes)


def project(model: Glow, latent: Latent, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Each item's coordinate along each direction, in amount units, relative to the direction's
    ``center`` (the boundary between the two groups it was fitted from): editing by ``a`` with
    nothing held fixed (``fixed=()``, or a direction without a stored ``fixed`` list) and no
    ``levels`` raises the coordinate by exactly ``a``."""
    names = list(model.directions) if names is None else list(names)
    flat = latent.flatten().detach().to("cpu", torch.float64)
    out: dict[str, np.ndarray] = {}
    for nm in names:
        e = _scaled(model, nm)
        denom = float(e @ e)
        if denom == 0:
            out[nm] = np.zeros(latent.batch_size)
            continue
        center = float(model.direction_info.get(nm, {}).get("center", 0.0))
        out[nm] = ((flat @ e) / denom - center).numpy()
    return out
