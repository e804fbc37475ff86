"""Inpainting: known pixels kept exactly, the hole error drops on a trained model, edge cases."""

import numpy as np
import pytest
import torch
from PIL import Image

from glowcore.base.images import to_tensor, to_uint8
from glowcore.ops.inpaint import coarse_fill, inpaint, load_mask
from glowcore.base.progress import CancelToken, Cancelled

from .latent_helpers import gradient_images, trained_model, untrained_model

HOLE = np.zeros((16, 16), bool)
HOLE[4:12, 4:12] = True


def hole_mse(result: torch.Tensor, image: np.ndarray, mask: np.ndarray) -> float:
    y = to_tensor(image)[0]
    return float(((result - y)[:, torch.from_numpy(mask)] ** 2).mean())


@pytest.mark.parametrize("method", ["map", "lbfgs"])
def test_known_pixels_are_kept_exactly(method):
    model = untrained_model()
    image = gradient_images(1, seed=1)[0]
    out = inpaint(model, image, HOLE, candidates=3, steps=4, method=method)
    assert out.shape == (3, 3, 16, 16) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    back = to_uint8(out)
    for candidate in back:
        assert np.array_equal(candidate[~HOLE], image[~HOLE])
    # float input: the known values come back bit for bit
    x = torch.rand(3, 16, 16)
    out = inpaint(model, x, HOLE, candidates=1, steps=2)
    assert torch.equal(out[0][:, ~torch.from_numpy(HOLE)], x[:, ~torch.from_numpy(HOLE)])


def test_inpainting_lowers_the_hole_error_on_a_trained_model():
    model = trained_model()
    images = gradient_images(6, seed=123)  # unseen gradients
    fill_err, map_err = [], []
    for image in images:
        y = to_tensor(image)
        start = coarse_fill(y, HOLE, "mean")[0]
        # the MAP objective alone (no reset of the hole's latent to the prior mean, which this
        # tiny model's weak split priors do not make useful), with a tight data term
        result = inpaint(model, image, HOLE, candidates=1, init="mean", reset_hole=False, sigma=0.05)
        fill_err.append(hole_mse(start, image, HOLE))
        map_err.append(hole_mse(result[0], image, HOLE))
    # the flow's prior completes the gradients far better than the flat fill it started from
    assert np.mean(map_err) < 0.6 * np.mean(fill_err)


def test_candidates_are_diverse_sorted_and_improve_their_objective():
    model = trained_model()
    image = gradient_images(1, seed=7)[0]
    info = inpaint(model, image, HOLE, candidates=3, temperature=0.9, seed=3, return_info=True)
    assert info.images.shape[0] == 3
    assert info.objective == sorted(info.objective)
    assert all(end < start for end, start in zip(info.objective, info.start_objective))
    hole = torch.from_numpy(HOLE)
    a, b = info.images[0][:, hole], info.images[1][:, hole]
    assert (a - b).abs().max() > 2 / 255
    again = inpaint(model, image, HOLE, candidates=3, temperature=0.9, seed=3)
    assert torch.allclose(again, info.images, atol=1e-5)  # a seed reproduces the candidates


def test_empty_mask_returns_the_image_and_full_mask_samples():
    model = untrained_model()
    image = gradient_images(1, seed=2)[0]
    out = inpaint(model, image, np.zeros((16, 16), bool), candidates=2)
    assert out.shape == (2, 3, 16, 16)
    assert torch.equal(out[0], to_tensor(image)[0]) and torch.equal(out[1], out[0])
    full = inpaint(model, image, np.ones((16, 16), np.uint8), candidates=2, temperature=0.6, seed=5)
    assert torch.allclose(full, model.sample(2, 0.6, seed=5))


def test_masks_of_other_sizes_and_from_files(tmp_path):
    model = untrained_model()
    image = gradient_images(1, seed=4)[0]
    big = np.kron(HOLE, np.ones((4, 4), bool))  # 64x64, the same region
    assert np.array_equal(load_mask(big, 16, 16), HOLE)
    a = inpaint(model, image, HOLE, candidates=1, steps=3)
    b = inpaint(model, image, big.astype(np.uint8) * 7, candidates=1, steps=3)
    assert torch.allclose(a, b)
    # white-on-black PNG
    Image.fromarray(big.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    assert np.array_equal(load_mask(tmp_path / "mask.png", 16, 16), HOLE)
    # painted on a transparent layer (colour does not matter, opacity does)
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[HOLE] = (255, 0, 0, 255)
    Image.fromarray(rgba).save(tmp_path / "painted.png")
    assert np.array_equal(load_mask(tmp_path / "painted.png", 16, 16), HOLE)
    # channels-last and channels-first arrays
    assert np.array_equal(load_mask(np.stack([HOLE, np.zeros_like(HOLE)], -1), 16, 16), HOLE)
    assert np.array_equal(load_mask(torch.from_numpy(HOLE)[None], 16, 16), HOLE)


def test_bad_masks_and_images_give_clear_errors(tmp_path):
    model = untrained_model()
    image = gradient_images(1, seed=4)[0]
    (tmp_path / "mask.png").write_text("painted? no, text")
    with pytest.raises(ValueError, match=r"mask\.png.*not an image"):
        inpaint(model, image, tmp_path / "mask.png")
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        inpaint(model, image, tmp_path / "nothing.png")
    with pytest.raises(ValueError, match="2-D"):
        inpaint(model, image, np.zeros((2, 2, 16, 16)))
    with pytest.raises(ValueError, match="mask must be"):
        inpaint(model, image, {"x": 1})
    with pytest.raises(ValueError, match="model takes 16x16"):
        inpaint(model, np.zeros((32, 32, 3), np.uint8), HOLE)
    with pytest.raises(ValueError, match="method"):
        inpaint(model, image, HOLE, method="magic")
    with pytest.raises(ValueError, match="candidates"):
        inpaint(model, image, HOLE, candidates=0)


def test_progress_cancel_and_the_model_is_restored():
    model = trained_model()
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    image = gradient_images(1, seed=6)[0]
    token = CancelToken()
    seen = []

    def progress(done, total, message):
        seen.append((done, total))
        if done == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        inpaint(model, image, HOLE, candidates=2, steps=20, progress=progress, cancel=token)
    assert seen[-1] == (3, 20)
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    model.eval()
    seen.clear()
    inpaint(model, image, HOLE, candidates=1, steps=5, progress=lambda d, n, m: seen.append(d))
    assert seen == [1, 2, 3, 4, 5]
    assert not model.training and all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_latent_hole_mask_covers_the_overlapping_cells_of_every_level():
    from glowcore.ops.inpaint import latent_hole_mask

    shapes = ((6, 8, 8), (12, 4, 4))
    one = np.zeros((16, 16), bool)
    one[0, 0] = True
    m = latent_hole_mask(one, shapes)
    assert m.shape == (6 * 64 + 12 * 16,) and int(m.sum()) == 6 + 12
    assert int(latent_hole_mask(HOLE, shapes).sum()) == 6 * 16 + 12 * 4  # 8x8 hole: 4x4 cells, then 2x2


def test_poisson_blend_removes_a_colour_offset_and_keeps_the_border():
    from glowcore.ops.inpaint import poisson_blend

    y = to_tensor(gradient_images(1, seed=12))
    hole = torch.from_numpy(HOLE)
    shifted = (y + 0.1) * 0.9  # the decoding drifted in brightness and contrast
    out = poisson_blend(shifted, y, hole)
    assert torch.equal(out[:, :, ~hole], y[:, :, ~hole])
    # the drift is gone: only the contrast change's (small) gradients remain
    pasted_err = float((shifted - y)[:, :, hole].abs().mean())
    blended_err = float((out - y)[:, :, hole].abs().mean())
    assert blended_err < 0.3 * pasted_err
    offset = poisson_blend(y + 0.2, y, hole)  # a pure offset is removed exactly
    assert torch.allclose(offset, y, atol=1e-4)


def test_paste_blend_keeps_the_known_pixels_and_pastes_the_decoding_into_the_hole():
    """``blend="paste"``: the decoding inside the hole, the input's own values outside it, bit for
    bit. The decoding differs from the input outside the hole too (the hole's latent cells were
    reset and optimised), so returning it unpasted would change known pixels."""
    model = untrained_model()
    hole = torch.from_numpy(HOLE)
    image = gradient_images(1, seed=1)[0]
    out = inpaint(model, image, HOLE, candidates=3, steps=4, blend="paste")
    for candidate in to_uint8(out):
        assert np.array_equal(candidate[~HOLE], image[~HOLE])
    x = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(5))
    pasted = inpaint(model, x, HOLE, candidates=2, steps=2, blend="paste")
    blended = inpaint(model, x, HOLE, candidates=2, steps=2)  # the same latents, Poisson-blended
    for i in range(2):
        assert torch.equal(pasted[i][:, ~hole], x[:, ~hole])
        assert torch.equal(blended[i][:, ~hole], x[:, ~hole])
        # inside the hole: the decoding as it is, which the gradient-domain blend changes
        assert not torch.equal(pasted[i][:, hole], blended[i][:, hole])
        assert not torch.equal(pasted[i][:, hole], x[:, hole])


@pytest.mark.parametrize("temperature", [0, -0.5, float("nan"), float("inf"), "0.7"])
def test_a_temperature_that_is_not_a_positive_number_is_refused(temperature):
    model = untrained_model()
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        inpaint(model, gradient_images(1, seed=1)[0], HOLE, candidates=1, steps=1, temperature=temperature)
