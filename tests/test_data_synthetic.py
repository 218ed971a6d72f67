from __future__ import annotations

import pytest
import torch

from universeg_plus.data.filters import boundary, dilate, erode, gaussian_blur
from universeg_plus.data.synthetic import SyntheticConfig, SyntheticTaskGenerator


def test_shapes_ranges_and_seeded_determinism():
    gen = SyntheticTaskGenerator((32, 40))
    a_img, a_msk = gen(3, 5, torch.Generator().manual_seed(7))
    b_img, b_msk = gen(3, 5, torch.Generator().manual_seed(7))
    c_img, _ = gen(3, 5, torch.Generator().manual_seed(8))
    assert a_img.shape == a_msk.shape == (3, 5, 1, 32, 40)
    assert torch.equal(a_img, b_img) and torch.equal(a_msk, b_msk)
    assert not torch.equal(a_img, c_img)
    assert a_img.min() >= 0 and a_img.max() <= 1
    assert set(torch.unique(a_msk).tolist()) <= {0.0, 1.0}
    assert (a_msk.flatten(1).sum(1) > 0).all()  # the foreground is drawn from a present label


def test_images_of_a_task_share_structure():
    gen = SyntheticTaskGenerator((32, 32), SyntheticConfig(deform=(0.0, 0.0), num_ellipses=(0, 0)))
    _, masks = gen(2, 4, torch.Generator().manual_seed(0))
    # without deformation all masks of a task are identical, and tasks differ
    assert torch.equal(masks[0, 0], masks[0, 3]) and torch.equal(masks[1, 0], masks[1, 2])
    assert not torch.equal(masks[0, 0], masks[1, 0])


def test_config_validation():
    with pytest.raises(ValueError, match="num_labels"):
        SyntheticConfig(num_labels=(1, 3))
    with pytest.raises(ValueError, match="blur_sigma"):
        SyntheticConfig(blur_sigma=(2.0, 1.0))
    with pytest.raises(ValueError, match="size"):
        SyntheticTaskGenerator((4, 4))
    with pytest.raises(ValueError, match=">= 1"):
        SyntheticTaskGenerator((16, 16))(0, 3)


def test_filters_on_known_inputs():
    m = torch.zeros(2, 1, 7, 7)
    m[:, :, 2:5, 2:5] = 1
    assert torch.equal(dilate(m, torch.tensor([1, 0]))[0, 0, 1:6, 1:6], torch.ones(5, 5))
    assert torch.equal(dilate(m, torch.tensor([1, 0]))[1], m[1])
    eroded = erode(m, 1)[0, 0]
    assert eroded.sum() == 1 and eroded[3, 3] == 1
    ring = boundary(m)[0, 0]
    assert ring.sum() == 8 and ring[3, 3] == 0
    x = torch.zeros(2, 1, 9, 9)
    x[:, :, 4, 4] = 1
    y = gaussian_blur(x, torch.tensor([1.0, 0.0]))
    assert torch.equal(y[1], x[1])
    assert y[0].sum().item() == pytest.approx(1.0, abs=1e-5)
    t = torch.arange(-3, 4, dtype=torch.float32)
    k = torch.exp(-0.5 * t**2)
    k /= k.sum()
    assert torch.allclose(y[0, 0, 4, 1:8], k * k[3], atol=1e-6)
