"""Directions: fitting (labels, examples, PCA), storing, editing, projecting; decoding stays stable."""

import numpy as np
import pytest
import torch
from PIL import Image

from glowcore import load_model, save_model
from glowcore.ops.directions import (
    add_directions,
    edit,
    edit_vector,
    encode_images,
    fit_example_direction,
    fit_label_directions,
    principal_directions,
    project,
    remove_direction,
)
from glowcore.latent import Latent

from .latent_helpers import gradient_images, trained_model, untrained_model


def synthetic_encodings(n: int, d: int, seed: int = 0):
    """Gaussian 'encodings' whose label is the sign of a hidden coordinate along ``u``."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(d, generator=gen)
    u /= u.norm()
    z = torch.randn(n, d, generator=gen)
    y = (z @ u > 0.3).numpy()
    return z, y, u


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a.double() @ b.double() / (a.double().norm() * b.double().norm()))


def with_directions(model=None):
    model = model or untrained_model()
    z, y, u = synthetic_encodings(400, model.dim, seed=1)
    w = torch.randn(model.dim, generator=torch.Generator().manual_seed(11))
    w /= w.norm()
    y2 = (z @ (u + w) > 0).numpy()  # partly the same trait as "a": the directions correlate
    vecs, infos = fit_label_directions(model, z, np.stack([y, y2], 1), ["a", "b"], return_info=True)
    add_directions(model, vecs, infos)
    return model


# ------------------------------------------------------------------------------------ fitting
def test_mean_difference_is_the_class_mean_difference():
    model = untrained_model()
    z, y, u = synthetic_encodings(500, model.dim)
    vecs, infos = fit_label_directions(model, z, y, ["attr"], return_info=True)
    expected = z[y].double().mean(0) - z[~y].double().mean(0)
    assert torch.allclose(vecs["attr"].double(), expected, atol=1e-5)
    assert cos(vecs["attr"], u) > 0.4  # a random direction: about 0.04
    info = infos["attr"]
    assert info["method"] == "mean-diff" and info["n_pos"] == int(y.sum()) and info["n_neg"] == int((~y).sum())
    # amount units: the positive mean sits at +0.5 and the negative at -0.5 around the centre
    assert info["pos_coord"] - info["center"] == pytest.approx(0.5) and info["neg_coord"] - info["center"] == pytest.approx(-0.5)


def test_logistic_normal_finds_the_hidden_direction_with_the_same_scale():
    model = untrained_model()
    z, y, u = synthetic_encodings(1500, model.dim, seed=2)
    vecs, infos = fit_label_directions(model, z, y.astype(int) * 2 - 1, ["attr"], method="logistic", return_info=True)
    v = vecs["attr"]
    assert cos(v, u) > 0.6
    info = infos["attr"]
    assert info["method"] == "logistic" and info["accuracy"] > 0.9
    # amount 1 = the class-mean distance along the normal
    mu = z[y].double().mean(0) - z[~y].double().mean(0)
    assert float(mu @ v.double()) / float(v.double() @ v.double()) == pytest.approx(1.0, rel=1e-4)
    # the centre is the decision boundary, which lies between the classes' projections
    assert info["neg_coord"] < info["center"] < info["pos_coord"]


def test_label_fitting_from_images_streams_batches_with_progress():
    model = untrained_model()
    images = gradient_images(40, seed=3)
    brightness = images.reshape(40, -1).mean(1)
    labels = brightness > np.median(brightness)
    calls = []
    a = fit_label_directions(model, images, labels, ["bright"], batch_size=7, progress=lambda d, n, m: calls.append((d, n)))
    b = fit_label_directions(model, encode_images(model, images), labels, ["bright"])
    assert torch.allclose(a["bright"], b["bright"], atol=1e-5)
    assert calls[-1] == (40, 40) and len(calls) == 6


def test_label_errors():
    model = untrained_model()
    z, y, _ = synthetic_encodings(20, model.dim)
    with pytest.raises(ValueError, match="all 20 images are negative"):
        fit_label_directions(model, z, np.zeros(20), ["x"])
    with pytest.raises(ValueError, match="one row per image"):
        fit_label_directions(model, z, y[:10], ["x"])
    with pytest.raises(ValueError, match="method"):
        fit_label_directions(model, z, y, ["x"], method="svm")
    with pytest.raises(ValueError, match="'='"):
        fit_label_directions(model, z, y, ["a=b"])
    with pytest.raises(ValueError, match="values per item"):
        fit_label_directions(model, z[:, :10], y, ["x"])


def test_principal_directions_recover_the_dominant_axis():
    model = untrained_model()
    gen = torch.Generator().manual_seed(4)
    u = torch.randn(model.dim, generator=gen)
    u /= u.norm()
    w = torch.randn(model.dim, generator=gen)
    w -= (w @ u) * u
    w /= w.norm()
    s = torch.randn(300, 2, generator=gen)
    z = torch.randn(300, model.dim, generator=gen) * 0.1 + 6.0 * s[:, :1] * u + 3.0 * s[:, 1:] * w + 2.0
    pcs, infos = principal_directions(model, z, 2, return_info=True)
    assert list(pcs) == ["pc1", "pc2"]
    assert abs(cos(pcs["pc1"], u)) > 0.99 and abs(cos(pcs["pc2"], w)) > 0.99
    assert float(pcs["pc1"].norm()) == pytest.approx(float(6.0 * s[:, 0].std()), rel=0.05)  # amount 1 = 1 sigma
    assert infos["pc1"]["explained_variance"] > infos["pc2"]["explained_variance"] > 0
    again = principal_directions(model, z, 2)
    assert torch.equal(again["pc1"], pcs["pc1"])  # deterministic, sign included
    with pytest.raises(ValueError, match="principal directions"):
        principal_directions(model, z[:3], 5)


def test_example_direction_from_folders(tmp_path):
    model = untrained_model()
    imgs = gradient_images(12, seed=5)
    pos_dir, neg_dir = tmp_path / "pos", tmp_path / "neg"
    pos_dir.mkdir()
    neg_dir.mkdir()
    for i, img in enumerate(imgs[:6]):
        Image.fromarray(img).save(pos_dir / f"{i}.png")
    for i, img in enumerate(imgs[6:]):
        Image.fromarray(img).save(neg_dir / f"{i}.png")
    vec, info = fit_example_direction(model, pos_dir, neg_dir, return_info=True)
    z = encode_images(model, imgs)
    expected = z[:6].double().mean(0) - z[6:].double().mean(0)
    assert torch.allclose(vec.double(), expected, atol=1e-4)
    assert info["kind"] == "examples" and info["n_pos"] == 6
    from_arrays = fit_example_direction(model, imgs[:6], imgs[6:])
    assert torch.allclose(from_arrays, vec, atol=1e-4)


# ------------------------------------------------------------------------------------ editing
def test_amount_zero_is_the_identity_exactly():
    model = with_directions()
    latent = model.sample_latent(3, 0.7, seed=0)
    out = edit(model, latent, {"a": 0.0, "b": 0.0})
    assert out is not latent
    assert all(torch.equal(x, y) for x, y in zip(out.levels, latent.levels))


def test_edits_are_linear_and_move_the_projection_by_the_amount():
    model = with_directions()
    latent = model.sample_latent(4, 0.7, seed=1)
    before = project(model, latent)
    one = edit(model, latent, {"a": 1.0})
    two = edit(model, latent, {"a": 2.0})
    d1 = one.flatten() - latent.flatten()
    d2 = two.flatten() - latent.flatten()
    assert torch.allclose(d2, 2 * d1, atol=1e-5)
    assert torch.allclose(d1[0], model.directions["a"], atol=1e-6)
    after = project(model, two)
    assert np.allclose(after["a"] - before["a"], 2.0, atol=1e-5)
    both = edit(model, latent, {"a": 1.0, "b": -0.5})
    b_vec = model.directions["b"]
    assert torch.allclose(both.flatten() - latent.flatten(), (model.directions["a"] - 0.5 * b_vec).expand(4, -1), atol=1e-5)


def test_stored_scale_multiplies_the_vector():
    model = with_directions()
    add_directions(model, {"unit": model.directions["a"] / model.directions["a"].norm()}, {"scale": 3.0})
    latent = model.sample_latent(1, 0.7, seed=2)
    delta = edit(model, latent, {"unit": 1.0}).flatten() - latent.flatten()
    assert float(delta.norm()) == pytest.approx(3.0, rel=1e-5)
    assert project(model, edit(model, latent, {"unit": 0.5}))["unit"] - project(model, latent)["unit"] == pytest.approx(0.5)


def test_fixed_directions_stay_unchanged():
    model = with_directions()
    a, b = model.directions["a"], model.directions["b"]
    assert cos(a, b) > 0.2  # correlated: a plain edit along a moves b
    latent = model.sample_latent(2, 0.7, seed=3)
    before = project(model, latent)
    plain = project(model, edit(model, latent, {"a": 2.0}))
    cond = project(model, edit(model, latent, {"a": 2.0}, fixed=["b"]))
    assert np.abs(plain["b"] - before["b"]).max() > 0.05
    assert np.abs(cond["b"] - before["b"]).max() < 1e-6
    assert np.all(cond["a"] - before["a"] > 1.0)
    v = edit_vector(model, "a", fixed=["b"])
    assert float(v.norm()) == pytest.approx(float(a.norm()), rel=1e-5)  # length kept (InterFaceGAN)
    with pytest.raises(ValueError, match="both edited and kept fixed"):
        edit(model, latent, {"a": 1.0}, fixed=["a"])
    add_directions(model, {"a2": 2 * a})
    with pytest.raises(ValueError, match="span"):
        edit(model, latent, {"a2": 1.0}, fixed=["a"])


def test_edits_limited_to_levels_keep_the_other_levels():
    model = with_directions()
    latent = model.sample_latent(2, 0.7, seed=4)
    coarse = edit(model, latent, {"a": 3.0}, levels=[-1])
    assert torch.equal(coarse.levels[0], latent.levels[0])
    assert not torch.equal(coarse.levels[1], latent.levels[1])
    fine = edit(model, latent, {"a": 3.0}, levels=[0])
    assert torch.equal(fine.levels[1], latent.levels[1]) and not torch.equal(fine.levels[0], latent.levels[0])
    # fixed directions are kept within the chosen levels too
    cond = edit(model, latent, {"a": 3.0}, levels=[-1], fixed=["b"])
    assert np.abs(project(model, cond)["b"] - project(model, latent)["b"]).max() < 1e-6
    with pytest.raises(ValueError, match="level index"):
        edit(model, latent, {"a": 1.0}, levels=[5])


def test_a_batch_of_previews_from_one_latent():
    model = with_directions()
    latent = model.sample_latent(1, 0.7, seed=5)
    strip = edit(model, latent, {"a": [-2.0, 0.0, 2.0], "b": 0.5})
    assert strip.batch_size == 3
    middle = edit(model, latent, {"b": 0.5})
    assert torch.allclose(strip[1].flatten(), middle.flatten(), atol=1e-6)
    with pytest.raises(ValueError, match="amounts"):
        edit(model, model.sample_latent(2, 0.7, seed=0), {"a": [1.0, 2.0, 3.0]})


def test_unknown_names_and_bad_amounts():
    model = with_directions()
    latent = model.sample_latent(1, 0.7, seed=6)
    with pytest.raises(ValueError, match="unknown direction 'Smiling'.*a, b"):
        edit(model, latent, {"Smiling": 1.0})
    with pytest.raises(ValueError, match="unknown direction"):
        edit(model, latent, {"a": 1.0}, fixed=["nope"])
    with pytest.raises(ValueError, match="finite"):
        edit(model, latent, {"a": float("nan")})
    with pytest.raises(ValueError, match="do not match"):
        edit(model, Latent([torch.zeros(1, 3, 4, 4)]), {"a": 1.0})


def test_add_validate_save_and_load(tmp_path):
    model = with_directions()
    with pytest.raises(ValueError, match="values"):
        add_directions(model, {"short": torch.zeros(5)})
    with pytest.raises(ValueError, match="NaN"):
        add_directions(model, {"bad": torch.full((model.dim,), float("nan"))})
    with pytest.raises(ValueError, match="already has"):
        add_directions(model, {"a": model.directions["a"]}, replace=False)
    with pytest.raises(ValueError, match="finite number"):
        add_directions(model, {"c": model.directions["a"]}, {"c": {"scale": float("inf")}})
    assert "c" not in model.directions
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m", device="cpu")
    assert set(back.directions) == {"a", "b"}
    assert torch.allclose(back.directions["a"], model.directions["a"])
    assert back.direction_info["a"]["center"] == pytest.approx(model.direction_info["a"]["center"])
    latent = model.sample_latent(2, 0.7, seed=7)
    assert np.allclose(project(back, latent)["a"], project(model, latent)["a"], atol=1e-6)
    remove_direction(back, "a")
    assert "a" not in back.directions and "a" not in back.direction_info
    with pytest.raises(ValueError, match="unknown direction"):
        remove_direction(back, "a")


# ------------------------------------------------------------------------------------ stability
@pytest.mark.parametrize("amount", [-20.0, -5.0, 5.0, 20.0])
def test_extreme_edits_decode_to_finite_images(amount):
    model = trained_model()
    images = gradient_images(64, seed=8)
    labels = images[:, :, :4].reshape(64, -1).mean(1) > images[:, :, -4:].reshape(64, -1).mean(1)
    add_directions(model, fit_label_directions(model, images, labels, ["left_bright"]))
    latent = model.encode(gradient_images(16, seed=9))
    edited = edit(model, latent, {"left_bright": amount})
    raw = model.reverse(edited)  # before the final clamp to [0, 1]
    assert torch.isfinite(raw).all()
    out = model.decode(edited)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    hot = model.decode(model.sample_latent(16, temperature=3.0, seed=10))
    assert torch.isfinite(hot).all()
