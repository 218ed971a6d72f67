"""Gradient saliency: exact values on a model with known gradients, shapes on the tiny network, plot."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from universeg_plus import create_model
from universeg_plus.robustness import compute_saliency, plot_saliency, saliency_rmse


class LinearToy(nn.Module):
    """``logits = a * target + sum_s w_s * label_s``: gradients are known in closed form."""

    def __init__(self, a: float, w: list[float]) -> None:
        super().__init__()
        self.a = a
        self.register_buffer("w", torch.tensor(w))

    def forward(self, target, support_images, support_labels):
        return self.a * target + (support_labels[:, :, 0] * self.w.view(1, -1, 1, 1)).sum(1, keepdim=True)


def _inputs(b: int = 2, s: int = 3, size: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(b, 1, size, size, generator=g)
    si = torch.rand(b, s, 1, size, size, generator=g)
    sl = torch.zeros(b, s, 1, size, size)
    sl[..., 4:12, 3:10] = 1
    return t, si, sl


def test_saliency_matches_closed_form():
    t, si, sl = _inputs()
    model = LinearToy(2.0, [3.0, -1.0, 0.0])
    region = torch.zeros_like(t)
    region[..., 2:14, 2:14] = 1
    sal = compute_saliency(model, t, si, sl, region=region)
    z = model(t, si, sl)
    dsig = torch.sigmoid(z) * (1 - torch.sigmoid(z))
    n = region.flatten(1).sum(1).view(-1, 1, 1, 1)
    g_t = (2.0 * dsig * region / n)[:, 0]
    torch.testing.assert_close(sal.target, g_t / g_t.flatten(1).amax(1).view(-1, 1, 1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(sal.support_importance, torch.tensor([[0.75, 0.25, 0.0]] * 2), atol=1e-6, rtol=0)
    assert float(sal.support_images.abs().sum()) == 0.0
    expect_score = (torch.sigmoid(z) * region).flatten(1).sum(1) / region.flatten(1).sum(1)
    torch.testing.assert_close(sal.score, expect_score)


def test_default_region_is_prediction_or_whole_image():
    t, si, sl = _inputs()
    never = LinearToy(0.0, [-50.0, 0.0, 0.0])  # probability ~0 everywhere: empty prediction -> whole image
    sal = compute_saliency(never, t, si, sl)
    whole = compute_saliency(never, t, si, sl, region=torch.ones_like(t))
    torch.testing.assert_close(sal.score, whole.score)


def test_tiny_model_shapes_and_rmse():
    torch.manual_seed(0)
    model = create_model("universeg-tiny").eval()
    t, si, sl = _inputs(b=1, s=4, size=32)
    sal = compute_saliency(model, t, si, sl)
    assert sal.target.shape == (1, 32, 32) and sal.support_images.shape == (1, 4, 32, 32)
    assert sal.support_importance.shape == (1, 4)
    torch.testing.assert_close(sal.support_importance.sum(1), torch.ones(1), atol=1e-5, rtol=0)
    assert float(sal.target.max()) == pytest.approx(1.0)
    assert all(p.grad is None for p in model.parameters())  # no gradients left on the weights
    assert float(saliency_rmse(sal, sal)[0]) == 0.0
    noisy = compute_saliency(model, (t + 0.2 * torch.rand_like(t)).clamp(0, 1), si, sl)
    assert 0.0 < float(saliency_rmse(sal, noisy)[0]) <= 1.0


def test_errors_and_plot(tmp_path):
    t, si, sl = _inputs(b=1)
    with pytest.raises(TypeError, match="nn.Module"):
        compute_saliency(lambda *a: a[0], t, si, sl)
    with pytest.raises(ValueError, match="region"):
        compute_saliency(LinearToy(1.0, [1.0, 1.0, 1.0]), t, si, sl, region=torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        saliency_rmse(torch.zeros(1, 4, 4), torch.zeros(1, 5, 5))
    sal = compute_saliency(LinearToy(1.0, [1.0, 2.0, 3.0]), t, si, sl)
    out = plot_saliency(sal, t, si, sl, tmp_path / "s.png", top=2, title="toy")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
