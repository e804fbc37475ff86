"""Pasting an edited face back into the full photo (glowcore.ops.paste)."""

import math

import numpy as np
import pytest
import torch

from glowcore.ops.align import AlignedFace
from glowcore.ops.alignnet import FRAME, apply, invert
from glowcore.ops.paste import FEATHER, MASK_CENTRE, MASK_POWER, MASK_RADII, paste, paste_mask, seam_ratio

from .test_align import busy


def aligned_on(photo, angle=20.0, side=180.0, centre=(210.0, 160.0), size=16):
    """An AlignedFace whose frame (side ``side`` px, turned ``angle`` degrees) sits at ``centre``."""
    a = math.radians(angle)
    k = FRAME / side
    r = k * np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    t = np.array([FRAME / 2, FRAME / 2]) - r @ np.asarray(centre)
    h, w = photo.shape[:2]
    return AlignedFace(face=np.zeros((size, size, 3), np.uint8), transform=np.hstack([r, t[:, None]]), box=(0, 0, 1, 1), photo_size=(w, h))


@pytest.fixture()
def scene():
    photo = busy(300, 420, seed=3)
    rng = np.random.default_rng(0)
    recon = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    edited = np.clip(recon.astype(int) + rng.integers(-40, 41, (16, 16, 3)), 0, 255).astype(np.uint8)
    return photo, aligned_on(photo), edited, recon


@pytest.mark.parametrize("spread", [True, False])
def test_outside_the_mask_is_bit_identical_and_inside_changes(scene, spread):
    photo, aligned, edited, recon = scene
    out = paste(aligned, edited, recon, photo, spread=spread)
    mask = paste_mask(aligned, spread=spread)
    assert out.shape == photo.shape and out.dtype == np.uint8
    outside = mask == 0
    assert outside.mean() > 0.2 and (~outside).mean() > 0.1
    assert np.array_equal(out[outside], photo[outside])
    assert (out[mask > 0.5] != photo[mask > 0.5]).mean() > 0.5
    assert not np.shares_memory(out, photo)


@pytest.mark.parametrize("spread", [True, False])
def test_zero_edit_returns_the_photo_bit_identical(scene, spread):
    photo, aligned, edited, recon = scene
    assert np.array_equal(paste(aligned, recon, recon, photo, spread=spread), photo)
    t = torch.from_numpy(recon).permute(2, 0, 1).float() / 255  # float decodes, as the model gives them
    assert np.array_equal(paste(aligned, t, t.clone(), photo, spread=spread), photo)
    assert np.array_equal(paste(aligned, edited, recon, photo, strength=0.0, spread=spread), photo)


def test_mask_follows_the_face_and_a_flat_change_lands_whole_at_its_centre():
    photo = np.full((300, 420, 3), 100, np.uint8)
    aligned = aligned_on(photo, angle=-25.0)
    recon = np.full((16, 16, 3), 100, np.uint8)
    out = paste(aligned, recon + 30, recon, photo, spread=False)
    cx, cy = apply(invert(aligned.transform), [MASK_CENTRE])[0]
    assert out[int(cy), int(cx)].tolist() == [130, 130, 130]
    mask = paste_mask(aligned, spread=False)
    assert mask[int(cy), int(cx)] == pytest.approx(1.0)
    assert mask[0, 0] == 0 and mask[-1, -1] == 0
    # the mask is the frame's rounded square carried into the photo by the face's transform
    ys, xs = np.mgrid[0:300, 0:420]
    f = apply(aligned.transform, np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], 1))
    x, y = np.abs(f[:, 0] - MASK_CENTRE[0]) / MASK_RADII[0], np.abs(f[:, 1] - MASK_CENTRE[1]) / MASK_RADII[1]
    r = (x**MASK_POWER + y**MASK_POWER) ** (1 / MASK_POWER)
    expected = 0.5 - 0.5 * np.cos(np.pi * np.clip((1 - r) / FEATHER, 0, 1))
    assert np.abs(mask.ravel() - expected).max() < 0.015  # (measured 0.007; a region cut short by the mask's corners: 0.036)


@pytest.mark.parametrize("spread", [True, False])
def test_colour_is_clipped_never_wrapped(spread):
    photo = np.full((200, 200, 3), 250, np.uint8)
    photo[:, 100:] = 5
    aligned = aligned_on(photo, angle=0, side=150, centre=(100, 100))
    recon = np.full((16, 16, 3), 128, np.uint8)
    up = paste(aligned, np.full_like(recon, 255), recon, photo, spread=spread)
    down = paste(aligned, np.zeros_like(recon), recon, photo, spread=spread)
    assert up[100, 90].tolist() == [255] * 3 and up[100, 110].min() > 100  # 250 + 127 -> 255, 5 + 127
    assert down[100, 110].tolist() == [0] * 3 and down[100, 90].max() < 150  # 5 - 128 -> 0, 250 - 128
    assert up.min() >= 5 and down.max() <= 250  # no wrap-around anywhere


@pytest.mark.parametrize("spread", [True, False])
def test_seam_ratio_sees_a_hard_edge_but_not_the_feathered_paste(scene, spread):
    photo, aligned, edited, recon = scene
    mask = paste_mask(aligned, spread=spread)
    out = paste(aligned, np.clip(recon.astype(int) + 60, 0, 255).astype(np.uint8), recon, photo, spread=spread)
    assert seam_ratio(photo, out, mask) < 1.3
    hard = photo.copy()
    hard[mask > 0.2] = np.clip(hard[mask > 0.2].astype(int) + 60, 0, 255)
    assert seam_ratio(photo, hard, mask) > 2.0


def test_wrong_sizes_are_refused(scene):
    photo, aligned, edited, recon = scene
    with pytest.raises(ValueError, match="aligned on a 420x300 photo"):
        paste(aligned, edited, recon, photo[:100])
    with pytest.raises(ValueError, match="same square size"):
        paste(aligned, edited[:8], recon, photo)


def test_fill_lands_in_the_painted_hole_and_nowhere_else():
    from glowcore.ops.paste import mask_to_face, paste_fill

    photo = busy(300, 420, seed=4)
    aligned = aligned_on(photo, angle=15.0)
    painted = np.zeros((300, 420), bool)
    painted[140:180, 190:240] = True  # inside the face's frame
    painted[5:15, 5:15] = True  # outside it: the model never saw it
    face_mask = mask_to_face(aligned, painted)
    assert face_mask.shape == (16, 16) and 1 <= face_mask.sum() < 30
    out = paste_fill(aligned, np.full((16, 16, 3), 200, np.uint8), photo, painted)
    assert (out[150:170, 200:230] == 200).all()  # the hole gets the fill
    assert np.array_equal(out[:20, :20], photo[:20, :20])  # outside the frame: untouched
    changed = (out != photo).any(2)
    ys, xs = np.nonzero(changed)
    d = 4.5 * 180 / 16  # the feather: 1.5 model pixels of 180/16 photo pixels, dilated then blurred (3 sigma)
    assert ys.min() >= 140 - d and ys.max() < 180 + d and xs.min() >= 190 - d and xs.max() < 240 + d
    assert changed.sum() < 0.5 * changed.size
    assert np.array_equal(paste_fill(aligned, np.zeros((16, 16, 3), np.uint8), photo, np.zeros((300, 420), bool)), photo)
    with pytest.raises(ValueError, match="the mask is 10x10 but the photo is 420x300"):
        paste_fill(aligned, np.zeros((16, 16, 3), np.uint8), photo, np.zeros((10, 10), bool))


def test_spread_change_is_the_change_inside_and_a_smooth_continuation_outside():
    from glowcore.ops.paste import spread_change

    rng = np.random.default_rng(1)
    change = rng.normal(0, 20, (16, 16, 3)).astype(np.float32)
    out = spread_change(change, 4)
    assert out.shape == (24, 24, 3)
    assert np.array_equal(out[4:20, 4:20], change)  # untouched inside the frame
    assert not out[0].any() and not out[-1].any() and not out[:, 0].any() and not out[:, -1].any()
    lap = out[1:-1, 1:-1] - 0.25 * (out[:-2, 1:-1] + out[2:, 1:-1] + out[1:-1, :-2] + out[1:-1, 2:])
    outside = np.ones((22, 22), bool)
    outside[3:19, 3:19] = False
    assert np.abs(lap[outside]).max() < 1e-2  # harmonic: each pixel the mean of its neighbours
    ones = spread_change(np.ones((16, 16, 1), np.float32), 4)[..., 0]
    assert (ones[1:-1, 1:-1] > 0).all() and ones.max() == 1.0 and np.all(np.diff(ones[12, :5]) > 0)


def test_spread_paste_keeps_the_whole_change_to_the_frames_edge(scene):
    photo, aligned, _, recon = scene
    up = np.clip(recon.astype(int) + 30, 0, 255).astype(np.uint8)
    plain, spread = paste(aligned, up, recon, photo, spread=False), paste(aligned, up, recon, photo)  # spread: the default
    inv = invert(aligned.transform)
    corner = apply(inv, [[3.0, 3.0]])[0]  # near the frame's corner: outside the round mask, inside the frame
    cx, cy = int(corner[0]), int(corner[1])
    assert np.array_equal(plain[cy, cx], photo[cy, cx])
    got = spread[cy, cx].astype(int) - photo[cy, cx].astype(int)
    assert (np.abs(got - 30) <= 4).all(), got  # the whole +30 (bicubic enlargement overshoots a little at the frame's edge)
    mask = paste_mask(aligned, spread=True)
    assert np.array_equal(spread[mask == 0], photo[mask == 0]) and (mask == 0).mean() > 0.2
    face = paste_mask(aligned, spread=False)
    assert (mask > face).sum() > 0 and (mask >= face - 1e-3).all() and np.array_equal(paste_mask(aligned), mask)
    assert np.array_equal(paste(aligned, recon, recon, photo, spread=True), photo)
