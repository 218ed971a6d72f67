from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from universeg_plus.nn.loss import DiceBCELoss, hard_dice, soft_dice_loss


def test_soft_dice_on_known_inputs():
    target = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    logits = torch.zeros(1, 1, 2, 2)  # p = 0.5 everywhere
    # 1 - (2 * 1.0 + 1) / (2.0 + 2 + 1) = 0.4
    assert soft_dice_loss(logits, target).item() == pytest.approx(0.4, abs=1e-6)
    assert soft_dice_loss(logits, target, smooth=0.0).item() == pytest.approx(0.5, abs=1e-6)
    perfect = torch.where(target > 0, 30.0, -30.0)
    assert soft_dice_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)


def test_dice_bce_combines_both_terms():
    target = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 2, 2)
    logits = torch.tensor([2.0, -1.0, 0.5, 1.0]).view(1, 1, 2, 2)
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    bce = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()
    assert DiceBCELoss()(logits, target).item() == pytest.approx((dice + bce).item(), abs=1e-6)
    assert DiceBCELoss(0.0, 1.0)(logits, target).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, target).item(), abs=1e-6
    )
    assert DiceBCELoss(2.0, 0.0)(logits, target).item() == pytest.approx(2 * dice.item(), abs=1e-6)
    with pytest.raises(ValueError, match="not both 0"):
        DiceBCELoss(0.0, 0.0)
    with pytest.raises(ValueError, match="one shape"):
        DiceBCELoss()(logits, target[..., :1])


def test_bf16_logits_are_scored_in_float32():
    target = torch.randint(0, 2, (2, 1, 8, 8)).float()
    logits = torch.randn(2, 1, 8, 8)
    full = DiceBCELoss()(logits, target)
    half = DiceBCELoss()(logits.bfloat16(), target)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), abs=2e-2)


def test_hard_dice():
    ref = torch.zeros(3, 1, 4, 4)
    ref[0, 0, :2] = 1
    ref[1, 0, 0, 0] = 1
    logits = torch.full((3, 1, 4, 4), -1.0)
    logits[0, 0, :1] = 1  # 4 of 8 pixels
    d = hard_dice(logits, ref)
    assert d[0].item() == pytest.approx(2 * 4 / (4 + 8))
    assert d[1].item() == 0.0
    assert d[2].item() == 1.0  # both empty
    assert math.isnan(hard_dice(logits[2:], ref[2:], empty_value=float("nan"))[0].item())
