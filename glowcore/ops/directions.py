"""Edit directions in latent space: fitting them, storing them with a model, applying them.

A direction is a flat vector over the whole latent (every level, ``model.dim`` values) stored in
``model.directions[name]``, with what is known about it in ``model.direction_info[name]``.

Scale convention: **amount 1.0 moves a face by the typical difference between faces that have
the attribute and faces that lack it**. The fitting functions here return vectors already scaled
that way (the "edit vector"); :func:`edit` adds ``amount * info.get("scale", 1.0) * vector``, so a
model may also store unit vectors with a ``"scale"`` entry. The info keys used here:

* ``scale`` (float, default 1.0): multiplies the stored vector;
* ``scale_neg`` (float > 0, default: ``scale``): multiplies it instead for negative amounts, for
  attributes that take a longer move to remove than to add (or the reverse): amount -1.0 removes
  the attribute about as reliably as +1.0 adds it;
* ``center`` (float, default 0.0): the coordinate (see :func:`project`) of the boundary between
  the two groups (mid-point of the class means, or the classifier's decision boundary), so that a
  projected coordinate above 0 reads "has the attribute";
* ``fixed`` (list of names of the model's other directions, default none): the directions an
  edit of this one holds fixed by default (conditional editing, see :func:`edit`): the model's
  own choice of which correlated attributes an edit should leave alone (``Male`` holding
  ``Wearing_Lipstick``, say). Model files without it edit each direction alone, as before;
* ``bounds`` (``[low, high]``, ``None`` for an open side, default none): the coordinates an edit
  moves a face toward and never past (``glowcore.ops.editing.bounded_amounts``), where the model's
  pictures break (``benchmarks/edit_bounds.py`` measures them);
* ``method``, ``n_pos``, ``n_neg``, ``accuracy``, ``std``, ``explained_variance``: provenance.

Kinds of direction:

* **labels** (:func:`fit_label_directions`): ``method="mean-diff"``: the mean encoding of faces with
  the attribute minus the mean of faces without it (OpenAI's Glow demo);
  ``method="logistic"``: the unit normal of an L2-regularised, class-balanced logistic-regression
  classifier in latent space (InterFaceGAN's recipe), scaled by the distance between the class
  means along it;
* **examples** (:func:`fit_example_direction`): two sets of images (arrays, folders or lists of
  photos), same methods;
* **principal directions** (:func:`principal_directions`): the top principal components of a set
  of encodings (GANSpace's recipe), named ``pc1``, ``pc2``, ..., each scaled to one standard
  deviation of the encodings along it.

Editing (:func:`edit`) can be made *conditional* (InterFaceGAN): the edit vector is projected
orthogonal to the ``fixed`` directions (then rescaled to its original length), so that the
coordinates along the fixed directions do not change; by default each direction holds the ones
its info's ``fixed`` list names (see :func:`fixed_sets` for how a caller's ``fixed`` and
``also_fixed`` combine with them). It can be limited to some levels (``levels=[-1]``: the top,
coarsest level only), keeping the other levels' detail.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ..base.images import to_tensor
from ..base.limits import check_direction_info, check_direction_name
from ..model import Glow
from ..latent import Latent
from ..base.progress import CancelToken, ProgressFn, check_cancel, report
from .editing import _unknown, edit, edit_vector, fixed_sets, project  # editing lives in .editing; offered here too

__all__ = [
    "METHODS",
    "encode_images",
    "fit_label_directions",
    "fit_example_direction",
    "principal_directions",
    "add_directions",
    "remove_direction",
    "edit_vector",
    "edit",
    "fixed_sets",
    "project",
]

METHODS = ("mean-diff", "logistic")


# ----------------------------------------------------------------------------------- helpers
def _unwrap(images: Any) -> Any:
    """A data set object (``glowcore.data.datasets.ImageDataset``) -> its image array."""
    if not isinstance(images, (np.ndarray, Tensor, Latent, list, tuple)) and hasattr(images, "images"):
        return images.images
    return images


def _num_items(images: Any) -> int:
    images = _unwrap(images)
    if isinstance(images, Latent):
        return images.batch_size
    if isinstance(images, (np.ndarray, Tensor)):
        return int(images.shape[0])
    return len(images)


def _batch(images: Any, start: int, stop: int) -> Any:
    part = _unwrap(images)[start:stop]
    if isinstance(part, list):
        if part and isinstance(part[0], Tensor):
            return torch.stack([p if p.ndim == 3 else p.squeeze(0) for p in part])
        return np.stack([np.asarray(p) for p in part])
    if isinstance(part, tuple):  # (images, labels) style datasets
        part = part[0]
    return part  # (read-only memory maps are copied by to_tensor)


def encode_images(
    model: Glow,
    images: Any,
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Encode images (uint8 ``(N, H, W, C)``, float ``(N, C, H, W)``, a list of either, or any
    sliceable sequence of them) to flat latents ``(N, D)`` on the CPU, batch by batch.

    A :class:`Latent` or an ``(N, D)`` float tensor is taken as already encoded.
    """
    if isinstance(images, Latent):
        return images.flatten().detach().to("cpu", dtype)
    if isinstance(images, Tensor) and images.ndim == 2:
        if images.shape[1] != model.dim:
            raise ValueError(f"encodings have {images.shape[1]} values per item, the model's latent has {model.dim}")
        return images.detach().to("cpu", dtype)
    n = _num_items(images)
    out = torch.empty((n, model.dim), dtype=dtype)
    for start, stop, zb in _encode_stream(model, images, batch_size, progress, cancel):
        out[start:stop] = zb.to(dtype)
    return out


def _encode_stream(
    model: Glow,
    images: Any,
    batch_size: int,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> Iterable[tuple[int, int, Tensor]]:
    """Yield ``(start, stop, flat encodings)`` batch by batch (precomputed encodings pass through)."""
    if isinstance(images, Latent) or (isinstance(images, Tensor) and images.ndim == 2):
        z = encode_images(model, images)
        for start in range(0, z.shape[0], max(1, batch_size) * 16):
            yield start, min(z.shape[0], start + max(1, batch_size) * 16), z[start : start + max(1, batch_size) * 16]
        return
    n = _num_items(images)
    if n == 0:
        raise ValueError("no images to encode")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    for start in range(0, n, batch_size):
        check_cancel(cancel)
        stop = min(n, start + batch_size)
        x = to_tensor(_batch(images, start, stop), model.config.channels)
        yield start, stop, model.encode(x, batch_size=batch_size).flatten().to("cpu", torch.float32)
        report(progress, stop, n, "encoding images")
    check_cancel(cancel)


def _labels_matrix(labels: Any, n: int, names: Sequence[str]) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n:
        raise ValueError(f"labels must have one row per image ({n}), got shape {np.asarray(labels).shape}")
    if y.shape[1] != len(names):
        raise ValueError(f"labels have {y.shape[1]} column(s) but {len(names)} name(s) were given")
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        raise ValueError("labels contain NaN or infinite values")
    return y > 0  # {0, 1}, {-1, 1} or bool: positive means "has the attribute"


def _check_name(name: Any) -> str:
    return check_direction_name(name)


def _finish(vec_unit: Tensor, mu_pos: Tensor, mu_neg: Tensor, boundary: float | None) -> tuple[Tensor, dict]:
    """Scale a unit direction so amount 1 = class-mean distance along it; compute the centre."""
    scale = float((mu_pos - mu_neg) @ vec_unit)
    if scale < 0:
        vec_unit, scale = -vec_unit, -scale
        boundary = None if boundary is None else -boundary
    if not scale > 0:
        raise ValueError("the two groups have the same mean along the fitted direction; no direction can be fitted")
    e = vec_unit * scale
    mid = float(((mu_pos + mu_neg) / 2) @ vec_unit)
    center = (boundary if boundary is not None else mid) / scale
    return e.float(), {"center": center, "pos_coord": float(mu_pos @ vec_unit) / scale, "neg_coord": float(mu_neg @ vec_unit) / scale}


def _fit_logistic(
    z: Tensor,
    y: np.ndarray,
    l2: float,
    max_iter: int,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Class-balanced L2 logistic regression for every column of ``y`` jointly.

    Returns weights ``(D, A)``, biases ``(A,)`` and training accuracies (balanced) ``(A,)``.
    """
    n, d = z.shape
    a = y.shape[1]
    yt = torch.from_numpy(y.astype(np.float32))
    n_pos = yt.sum(0)
    n_neg = n - n_pos
    # Balanced weights: each class contributes half of the loss.
    w_pos = 0.5 / n_pos.clamp_min(1)
    w_neg = 0.5 / n_neg.clamp_min(1)
    sample_w = yt * w_pos + (1 - yt) * w_neg  # (N, A), columns sum to 1
    mu = z.mean(0, keepdim=True)
    zc = z - mu  # centring only conditions the problem; the normal is unchanged
    weight = torch.zeros(d, a, requires_grad=True)
    bias = torch.zeros(a, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)
    evals = [0]

    def closure() -> Tensor:
        check_cancel(cancel)
        opt.zero_grad()
        logits = zc @ weight + bias
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, yt, reduction="none") * sample_w).sum() / a
        loss = loss + 0.5 * l2 * (weight * weight).sum() / a
        loss.backward()
        evals[0] += 1
        report(progress, min(evals[0], max_iter), max_iter, "fitting classifiers")
        return loss

    with torch.inference_mode(False), torch.enable_grad():
        opt.step(closure)
    w = weight.detach()
    b = bias.detach() - (mu @ w).squeeze(0)  # back to uncentred coordinates
    with torch.no_grad():
        pred = (z @ w + b) > 0
        yb = yt > 0.5
        tpr = (pred & yb).sum(0) / n_pos.clamp_min(1)
        tnr = (~pred & ~yb).sum(0) / n_neg.clamp_min(1)
    return w, b, (tpr + tnr) / 2


# ----------------------------------------------------------------------------------- fitting
def fit_label_directions(
    model: Glow,
    images: Any,
    labels: Any,
    names: Sequence[str],
    method: str = "mean-diff",
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    *,
    l2: float = 1e-2,
    max_iter: int = 100,
    return_info: bool = False,
) -> dict[str, Tensor] | tuple[dict[str, Tensor], dict[str, dict]]:
    """Fit one direction per label column.

    ``images``: anything :func:`encode_images` takes (or its encodings); ``labels``: ``(N,)`` or
    ``(N, A)`` with values in {0, 1}, {-1, 1} or bool (positive = has the attribute); ``names``:
    the ``A`` attribute names. ``method``: ``"mean-diff"`` or ``"logistic"`` (see the module
    docstring; ``l2`` is the logistic regression's ridge strength, ``max_iter`` its L-BFGS
    iterations). Returns ``{name: edit vector (D,)}`` scaled so that amount 1.0 is the class-mean
    distance, and with ``return_info`` also ``{name: info}`` for :func:`add_directions`.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    names = [_check_name(nm) for nm in names]
    if len(set(names)) != len(names):
        raise ValueError("direction names must be distinct")
    n = _num_items(images)
    y = _labels_matrix(labels, n, names)
    for j, nm in enumerate(names):
        k = int(y[:, j].sum())
        if k == 0 or k == n:
            raise ValueError(f"attribute {nm!r}: all {n} images are {'positive' if k else 'negative'}; need both kinds")
    out: dict[str, Tensor] = {}
    infos: dict[str, dict] = {}
    if method == "logistic":
        z = encode_images(model, images, batch_size, progress, cancel)
        w, b, acc = _fit_logistic(z, y, l2, max_iter, progress, cancel)
        sum_pos = torch.from_numpy(y.astype(np.float64)).T @ z.double()  # (A, D)
        sum_all = z.double().sum(0)
    else:  # the class means only: stream the encodings, never hold them all
        sum_pos = torch.zeros(len(names), model.dim, dtype=torch.float64)
        sum_all = torch.zeros(model.dim, dtype=torch.float64)
        for start, stop, zb in _encode_stream(model, images, batch_size, progress, cancel):
            sum_pos += torch.from_numpy(y[start:stop].astype(np.float64)).T @ zb.double()
            sum_all += zb.double().sum(0)
    n_pos_all = y.sum(0)
    for j, nm in enumerate(names):
        check_cancel(cancel)
        n_pos, n_neg = int(n_pos_all[j]), int(n - n_pos_all[j])
        mu_pos = sum_pos[j] / n_pos
        mu_neg = (sum_all - sum_pos[j]) / n_neg
        if method == "mean-diff":
            diff = mu_pos - mu_neg
            norm = float(diff.norm())
            if norm == 0:
                raise ValueError(f"attribute {nm!r}: both groups have the same mean encoding")
            vec, info = _finish(diff / norm, mu_pos, mu_neg, None)
            info.update(method="mean-diff")
        else:
            wj = w[:, j].double()
            wn = float(wj.norm())
            if wn == 0:
                raise ValueError(f"attribute {nm!r}: the classifier learned nothing (zero weights)")
            vec, info = _finish(wj / wn, mu_pos, mu_neg, -float(b[j]) / wn)
            info.update(method="logistic", l2=l2, accuracy=round(float(acc[j]), 4))
        info.update(kind="labels", n_pos=n_pos, n_neg=n_neg, scale=1.0)
        out[nm] = vec
        infos[nm] = info
    return (out, infos) if return_info else out


def _example_images(model: Glow, images: Any, frame_face: bool, progress: ProgressFn | None, cancel: CancelToken | None) -> Any:
    import os

    if isinstance(images, (str, os.PathLike)) or (isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, os.PathLike, bytes))):
        from .photo import load_photos

        arr, _ = load_photos(images, model.config.image_size, frame_face, channels=model.config.channels, progress=progress, cancel=cancel)
        return arr
    return images


def fit_example_direction(
    model: Glow,
    positives: Any,
    negatives: Any,
    method: str = "mean-diff",
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    *,
    frame_face: bool = True,
    l2: float = 1e-2,
    return_info: bool = False,
) -> Tensor | tuple[Tensor, dict]:
    """A direction from two sets of examples: faces that show a trait and faces that do not.

    Each set is an image array/tensor, a :class:`Latent`, a folder of photos, or a list of photo
    paths (photos are framed with :func:`glowcore.ops.photo.load_photo`). Returns the edit vector
    ``(D,)`` (amount 1.0 = the mean difference between the sets along the direction), and with
    ``return_info`` also its info dict.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    pos = encode_images(model, _example_images(model, positives, frame_face, progress, cancel), batch_size, progress, cancel)
    neg = encode_images(model, _example_images(model, negatives, frame_face, progress, cancel), batch_size, progress, cancel)
    z = torch.cat([pos, neg])
    y = np.concatenate([np.ones(len(pos), bool), np.zeros(len(neg), bool)])[:, None]
    vecs, infos = fit_label_directions(model, z, y, ["example"], method, batch_size, progress, cancel, l2=l2, return_info=True)  # type: ignore[misc]
    info = dict(infos["example"], kind="examples")
    return (vecs["example"], info) if return_info else vecs["example"]


def principal_directions(
    model: Glow,
    images: Any,
    k: int = 10,
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    *,
    seed: int = 0,
    return_info: bool = False,
) -> dict[str, Tensor] | tuple[dict[str, Tensor], dict[str, dict]]:
    """The top ``k`` principal directions of the images' encodings, named ``pc1`` ... ``pck``.

    Each vector is scaled to one standard deviation of the encodings along it (amount 1.0 =
    1 sigma; GANSpace's convention), its sign chosen so that its largest entry is positive
    (deterministic). Uses a randomized SVD (seeded) of the centred encodings.
    """
    n = _num_items(images)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if n < 2:
        raise ValueError("principal directions need at least 2 images")
    if k > min(n - 1, model.dim):
        raise ValueError(f"cannot compute {k} principal directions from {n} images (at most {min(n - 1, model.dim)})")
    z = encode_images(model, images, batch_size, progress, cancel).double()
    check_cancel(cancel)
    mean = z.mean(0)
    zc = z - mean
    total_var = float((zc * zc).sum()) / (n - 1)
    q = min(k + 10, n, model.dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, s, v = torch.svd_lowrank(zc, q=q, niter=6)
    out: dict[str, Tensor] = {}
    infos: dict[str, dict] = {}
    for i in range(k):
        u = v[:, i]
        if float(u[u.abs().argmax()]) < 0:
            u = -u
        std = float(s[i]) / math.sqrt(n - 1)
        name = f"pc{i + 1}"
        out[name] = (u * std).float()
        infos[name] = {
            "kind": "pca",
            "method": "pca",
            "std": std,
            "explained_variance": (std * std) / total_var if total_var > 0 else 0.0,
            "center": float(mean @ u) / std if std > 0 else 0.0,
            "n": n,
            "scale": 1.0,
        }
    report(progress, 1, 1, "principal directions")
    return (out, infos) if return_info else out


# ----------------------------------------------------------------------------------- storing
def add_directions(
    model: Glow,
    directions: Mapping[str, Tensor],
    info: Mapping[str, Mapping[str, Any]] | Mapping[str, Any] | None = None,
    *,
    replace: bool = True,
) -> None:
    """Store named directions (flat ``(D,)`` vectors) with the model, with their info dicts.

    ``info`` maps each name to its info dict (as returned with ``return_info=True``), or is one
    dict applied to every direction. They are saved with the model by
    :func:`glowcore.save_model`. With ``replace=False`` an existing name is an error. An info's
    ``fixed`` list must name directions the model has or gets in this call.
    """
    per_name = info is not None and all(isinstance(v, Mapping) for v in info.values()) and set(info) <= set(directions) and len(info) > 0
    staged: dict[str, tuple[Tensor, dict]] = {}
    known = set(model.directions) | set(directions)
    for name, vec in directions.items():
        _check_name(name)
        if not replace and name in model.directions:
            raise ValueError(f"the model already has a direction named {name!r}")
        v = torch.as_tensor(vec).detach().reshape(-1).to("cpu", torch.float32)
        if v.numel() != model.dim:
            raise ValueError(f"direction {name!r} has {v.numel()} values, the model's latent has {model.dim}")
        if not torch.isfinite(v).all():
            raise ValueError(f"direction {name!r} contains NaN or infinite values")
        meta = dict(info.get(name, {})) if per_name else dict(info or {})  # type: ignore[union-attr]
        check_direction_info(name, meta, known=known)
        staged[name] = (v.clone(), meta)
    for name, (v, meta) in staged.items():
        model.directions[name] = v
        model.direction_info[name] = meta


def remove_direction(model: Glow, name: str) -> None:
    """Remove a direction (``KeyError``-free: ``ValueError`` naming the known ones); the other
    directions stop holding it fixed (it leaves their ``fixed`` lists)."""
    if name not in model.directions:
        raise ValueError(_unknown(model, name))
    del model.directions[name]
    model.direction_info.pop(name, None)
    for info in model.direction_info.values():
        if name in (info.get("fixed") or ()):
            info["fixed"] = [f for f in info["fixed"] if f != name]
            if not info["fixed"]:
                del info["fixed"]
