"""Training loss: soft Dice + binary cross-entropy, computed in float32."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["DiceBCELoss", "hard_dice", "soft_dice_loss"]


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Mean over samples of ``1 - (2 sum(p y) + smooth) / (sum(p) + sum(y) + smooth)``, ``p = sigmoid(logits)``.

    Args:
        logits: ``(B, 1, H, W)`` raw scores.
        target: ``(B, 1, H, W)`` in [0, 1].
        smooth: Additive smoothing (also makes an empty-vs-empty sample score ~0 loss).

    Returns:
        Scalar tensor.
    """
    p = torch.sigmoid(logits.float()).flatten(1)
    y = target.float().flatten(1)
    inter = (p * y).sum(1)
    return (1 - (2 * inter + smooth) / (p.sum(1) + y.sum(1) + smooth)).mean()


class DiceBCELoss(torch.nn.Module):
    """``dice_weight * soft Dice loss + bce_weight * BCE-with-logits``; see :func:`soft_dice_loss`."""

    def __init__(self, dice_weight: float = 1.0, bce_weight: float = 1.0, smooth: float = 1.0) -> None:
        super().__init__()
        if dice_weight < 0 or bce_weight < 0 or dice_weight + bce_weight == 0:
            raise ValueError(f"weights must be >= 0 and not both 0, got dice={dice_weight}, bce={bce_weight}")
        self.dice_weight, self.bce_weight, self.smooth = dice_weight, bce_weight, smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``logits, target (B, 1, H, W)`` -> scalar."""
        if logits.shape != target.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} must have one shape")
        loss = logits.new_zeros((), dtype=torch.float32)
        if self.dice_weight:
            loss = loss + self.dice_weight * soft_dice_loss(logits, target, self.smooth)
        if self.bce_weight:
            loss = loss + self.bce_weight * F.binary_cross_entropy_with_logits(logits.float(), target.float())
        return loss


@torch.no_grad()
def hard_dice(
    logits: torch.Tensor, target: torch.Tensor, empty_value: float = 1.0, threshold: float = 0.0
) -> torch.Tensor:
    """Per-sample Dice of ``logits > threshold`` against ``target > 0.5``: ``(B, 1, H, W) -> (B,)``;
    ``empty_value`` where both are empty. Give probabilities with ``threshold=0.5``."""
    p = (logits > threshold).flatten(1).float()
    y = (target > 0.5).flatten(1).float()
    denom = p.sum(1) + y.sum(1)
    d = 2 * (p * y).sum(1) / denom.clamp_min(1)
    return torch.where(denom > 0, d, torch.full_like(d, empty_value))
