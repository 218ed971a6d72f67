"""A small 2D U-Net: the per-task supervised network (`universeg_plus.supervised`, method="unet")."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["UNet"]


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net (Ronneberger et al., 2015) with ``depth`` levels, widths ``width * 2**level``.

    Two 3x3 conv + BatchNorm + ReLU per level, max-pool down, bilinear up + concat skip.

    Args:
        width: Channels at the first level.
        depth: Number of levels (``depth - 1`` poolings); H and W must be divisible by
            ``2 ** (depth - 1)``.
        in_channels: Input channels (1: the image; 2: the image and a prior probability map).
    """

    def __init__(self, width: int = 16, depth: int = 4, in_channels: int = 1) -> None:
        super().__init__()
        if width < 1 or depth < 1 or in_channels < 1:
            raise ValueError(
                f"width, depth and in_channels must be >= 1, got width={width}, depth={depth}, in_channels={in_channels}"
            )
        self.depth = depth
        self.in_channels = in_channels
        widths = [width * 2**i for i in range(depth)]
        self.down = nn.ModuleList(_block(c_in, c) for c_in, c in zip([in_channels, *widths[:-1]], widths))
        self.up = nn.ModuleList(_block(widths[i] + widths[i + 1], widths[i]) for i in reversed(range(depth - 1)))
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.head = nn.Conv2d(widths[0], 1, 1)

    @property
    def size_multiple(self) -> int:
        """H and W must be divisible by this."""
        return 2 ** (self.depth - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W)`` float in [0, 1] -> logits ``(B, 1, H, W)``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet input must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        m = self.size_multiple
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"UNet input H and W must be divisible by {m}, got {tuple(x.shape[-2:])}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            x = block(torch.cat([self.upsample(x), skips.pop()], dim=1))
        return self.head(x)
