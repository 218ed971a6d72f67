"""The per-task U-Net baseline: shapes, input checks, determinism, and that it learns."""

from __future__ import annotations

import pytest
import torch

from single_thread import one_thread  # noqa: F401  (autouse: one torch thread)

from universeg_plus.evaluation.baseline import BaselineConfig, predict_baseline, train_baseline
from universeg_plus.evaluation.unet import UNet
from universeg_plus.metrics import dice


def _squares(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dark noisy images with one bright 10x10 square each; the mask is the square."""
    g = torch.Generator().manual_seed(seed)
    images = 0.3 * torch.rand(n, 1, 32, 32, generator=g)
    masks = torch.zeros(n, 1, 32, 32)
    for i in range(n):
        y, x = torch.randint(0, 22, (2,), generator=g).tolist()
        masks[i, :, y : y + 10, x : x + 10] = 1
        images[i, :, y : y + 10, x : x + 10] += 0.6
    return images, masks


def test_unet_shapes_and_checks() -> None:
    net = UNet(width=4, depth=3)
    assert net(torch.rand(2, 1, 16, 24)).shape == (2, 1, 16, 24)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        net(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.rand(1, 1, 18, 16))
    with pytest.raises(ValueError, match="width, depth and in_channels"):
        UNet(width=0)


def test_same_seed_same_network() -> None:
    images, masks = _squares(3, 0)
    cfg = BaselineConfig(steps=3, batch_size=4, width=4, depth=3)
    a = train_baseline(images, masks, cfg, seed=5)
    b = train_baseline(images, masks, cfg, seed=5)
    c = train_baseline(images, masks, cfg, seed=6)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)
    assert any(not torch.equal(va, vc) for va, vc in zip(a.state_dict().values(), c.state_dict().values()))
    with pytest.raises(ValueError, match="must match images"):
        train_baseline(images, masks[:2], cfg)


def test_learns_a_simple_task() -> None:
    images, masks = _squares(4, 1)
    test_images, test_masks = _squares(6, 2)
    cfg = BaselineConfig(steps=60, batch_size=8, lr=3e-3, width=8, depth=3)
    net = train_baseline(images, masks, cfg, seed=0)
    probs = predict_baseline(net, test_images)
    assert probs.shape == (6, 1, 32, 32) and 0 <= float(probs.min()) and float(probs.max()) <= 1
    d = dice(probs[:, 0] > 0.5, test_masks[:, 0] > 0.5)
    assert float(d.mean()) > 0.8, d


def test_warm_start_continues_the_given_network() -> None:
    """``init=`` trains the given network further, in place; a fresh one from the same seed differs."""
    images, masks = _squares(3, 0)
    cfg = BaselineConfig(steps=2, batch_size=4, width=4, depth=3)
    first = train_baseline(images, masks, cfg, seed=1)
    before = {k: v.clone() for k, v in first.state_dict().items()}
    again = train_baseline(images, masks, cfg, seed=2, init=first)
    assert again is first
    assert any(not torch.equal(before[k], v) for k, v in again.state_dict().items())
    fresh = train_baseline(images, masks, cfg, seed=2)
    assert any(not torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), again.state_dict().values()))
    with pytest.raises(TypeError, match="init must be a UNet taking the same input channels"):
        train_baseline(images, masks, cfg, init=UNet(4, 3, in_channels=2))
