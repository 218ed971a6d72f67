from __future__ import annotations

import numpy as np
import pytest
import torch

from universeg_plus.data.superpixels import SuperpixelTaskSource, load_image_folder, superpixels


def _quadrants(n: int = 2, size: int = 16) -> torch.Tensor:
    x = torch.zeros(n, 1, size, size)
    h = size // 2
    x[:, :, :h, :h], x[:, :, :h, h:], x[:, :, h:, :h], x[:, :, h:, h:] = 0.0, 0.33, 0.66, 1.0
    return x


def test_superpixels_recover_constant_regions():
    labels = superpixels(_quadrants(), n_segments=4, compactness=0.1)
    assert labels.shape == (2, 16, 16)
    for q in (labels[0, :8, :8], labels[0, :8, 8:], labels[0, 8:, :8], labels[0, 8:, 8:]):
        assert (q == q[0, 0]).all()
    assert len(torch.unique(labels[0])) == 4
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        superpixels(torch.zeros(16, 16))


def test_source_makes_seeded_repeated_pseudo_tasks():
    src = SuperpixelTaskSource(_quadrants(3), n_segments=4, merge_prob=0.0, compactness=0.1)
    a_i, a_m = src(5, 3, torch.Generator().manual_seed(0))
    b_i, b_m = src(5, 3, torch.Generator().manual_seed(0))
    assert a_i.shape == a_m.shape == (5, 3, 1, 16, 16)
    assert torch.equal(a_i, b_i) and torch.equal(a_m, b_m)
    assert torch.equal(a_m, a_m[:, :1].expand_as(a_m))  # entries repeat; augmentation makes them differ
    assert (a_m.flatten(1).sum(1) == 3 * 64).all()  # merge_prob 0: exactly one 8x8 quadrant
    _, merged = SuperpixelTaskSource(_quadrants(3), n_segments=4, merge_prob=1.0, compactness=0.1)(
        5, 1, torch.Generator().manual_seed(0)
    )
    assert (merged.flatten(1).sum(1) == 256).all()  # every quadrant touches the seed: all merge


def test_load_image_folder(tmp_path):
    from PIL import Image

    Image.fromarray(np.arange(100, dtype=np.uint8).reshape(10, 10)).save(tmp_path / "a.png")
    Image.fromarray(np.full((12, 8, 3), 7, np.uint8)).save(tmp_path / "b.png")
    imgs = load_image_folder(tmp_path, (8, 8))
    assert imgs.shape == (2, 1, 8, 8) and imgs[0].max() == 1 and imgs[1].max() == 0
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        load_image_folder(tmp_path / "empty", (8, 8))
    with pytest.raises(FileNotFoundError):
        load_image_folder(tmp_path / "missing", (8, 8))
