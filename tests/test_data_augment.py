from __future__ import annotations

import pytest
import torch

from universeg_plus.data.augment import (
    Compose,
    RandomAffine,
    RandomBlur,
    RandomBoundary,
    RandomElastic,
    RandomFlip,
    RandomGamma,
    RandomInvert,
    RandomLabelSwap,
    RandomMorphology,
    RandomNoise,
    build_augmentations,
)
from universeg_plus.train.config import AugmentConfig

GEOMETRIC = [
    lambda lvl: RandomAffine(1.0, lvl, degrees=30, translate=0.1),
    lambda lvl: RandomElastic(1.0, lvl, alpha=0.05),
    lambda lvl: RandomFlip(0.5, lvl),
]


def _episode(b=3, n=5, size=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(b, 1, 1, size, size, generator=g)
    mask = torch.zeros(b, 1, 1, size, size)
    mask[..., 6:16, 4:14] = 1
    # every entry of an episode is the same pair, so only in-task augmentation can tell them apart
    return base.expand(b, n, 1, size, size).clone(), mask.expand(b, n, 1, size, size).clone()


@pytest.mark.parametrize("make", GEOMETRIC)
def test_task_level_is_identical_within_an_episode(make):
    images, masks = _episode()
    out_i, out_m = make("task")(images, masks, torch.Generator().manual_seed(1))
    assert torch.equal(out_i, out_i[:, :1].expand_as(out_i))
    assert torch.equal(out_m, out_m[:, :1].expand_as(out_m))
    assert set(torch.unique(out_m).tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("make", GEOMETRIC[:2])
def test_entry_level_differs_within_an_episode(make):
    images, masks = _episode()
    out_i, out_m = make("entry")(images, masks, torch.Generator().manual_seed(1))
    assert not torch.equal(out_i[:, 0], out_i[:, 1])
    assert not torch.equal(out_m[:, 0], out_m[:, 1])


def test_seeded_determinism_and_draw_apply_split():
    images, masks = _episode()
    pipe = build_augmentations(AugmentConfig())
    a = pipe(images, masks, torch.Generator().manual_seed(3))
    b = pipe(images, masks, torch.Generator().manual_seed(3))
    c = pipe(images, masks, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert a[0].shape == images.shape and a[0].min() >= 0 and a[0].max() <= 1
    t = RandomAffine(1.0, "task")
    params = t.draw(images, torch.Generator().manual_seed(5))
    assert params["theta"].shape == (15, 2, 3)
    assert torch.equal(t.apply(images, masks, params)[0], t.apply(images, masks, params)[0])


def test_probability_zero_is_identity():
    images, masks = _episode()
    pipe = Compose(
        [
            RandomAffine(0.0),
            RandomElastic(0.0),
            RandomFlip(0.0),
            RandomInvert(0.0),
            RandomGamma(0.0),
            RandomBlur(0.0),
            RandomNoise(0.0),
            RandomMorphology(0.0),
            RandomLabelSwap(0.0),
            RandomBoundary(0.0),
        ]
    )
    out_i, out_m = pipe(images, masks, torch.Generator().manual_seed(0))
    assert torch.allclose(out_i, images, atol=1e-6) and torch.equal(out_m, masks)


def test_label_and_intensity_transforms_on_known_inputs():
    images, masks = _episode(b=1, n=2)
    g = torch.Generator()
    out_i, out_m = RandomInvert(1.0)(images, masks, g)
    assert torch.allclose(out_i, 1 - images) and torch.equal(out_m, masks)
    _, swapped = RandomLabelSwap(1.0)(images, masks, g)
    assert torch.equal(swapped, 1 - masks)
    _, edge = RandomBoundary(1.0)(images, masks, g)
    assert edge[0, 0, 0].sum() == 2 * 10 + 2 * 8  # the ring of a 10x10 square
    flipped_i, flipped_m = RandomFlip(1.0)(images, masks, g)
    assert torch.equal(flipped_m[0, 0, 0], masks[0, 0, 0].flip(-1).flip(-2).T)
    assert torch.equal(flipped_i[0, 0, 0], images[0, 0, 0].flip(-1).flip(-2).T)
    params = RandomGamma(1.0, gamma=(2.0, 2.0)).draw(images, g)
    out_i, _ = RandomGamma(1.0).apply(images, masks, params)
    assert torch.allclose(out_i, images.clamp(1e-6, 1) ** 2, atol=1e-6)


def test_morphology_keeps_masks_nonempty():
    images, masks = _episode(b=4, n=1)
    masks[:, :, :, :, :] = 0
    masks[..., 5, 5] = 1  # a single pixel would vanish under erosion
    _, out = RandomMorphology(1.0, max_iterations=2)(images, masks, torch.Generator().manual_seed(0))
    assert (out.flatten(1).sum(1) >= 1).all()


def test_validation_errors():
    with pytest.raises(ValueError, match="p must be"):
        RandomAffine(1.5)
    with pytest.raises(ValueError, match="level"):
        RandomFlip(0.5, level="batch")
    with pytest.raises(ValueError, match="sigma"):
        RandomBlur(0.5, sigma=(2.0, 1.0))
    with pytest.raises(ValueError, match=r"\(B, N, 1, H, W\)"):
        RandomInvert(1.0)(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8), torch.Generator())
