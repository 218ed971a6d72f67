"""The cross-convolution in two exact forms: the official pairwise one and the split one.

A cross-conv is a 3x3 conv over ``[target channels, support channels]`` for every support entry.
Before any activation it is linear, so with ``W = [W_t | W_s]``::

    conv([t, s_i]; W) + b = conv(t; W_t) + b + conv(s_i; W_s)

The split form computes the target half once per target instead of S times and never builds
the repeated target. Both forms share one ``nn.Conv2d`` and so one state_dict.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

__all__ = ["CrossConv2d"]


class CrossConv2d(nn.Conv2d):
    """A conv applied to every (target, support entry) pair of channel-concatenated maps.

    Args:
        target_channels: Channels of the target stream ``Ct``.
        support_channels: Channels of the support stream ``Cs``.
        out_channels: Output channels ``Co``.
        kernel_size: Square kernel size (padding keeps H, W).
    """

    def __init__(
        self, target_channels: int, support_channels: int, out_channels: int, kernel_size: int = 3
    ) -> None:
        super().__init__(
            target_channels + support_channels,
            out_channels,
            kernel_size=kernel_size,
            padding=kernel_size // 2,
        )
        self.target_channels = target_channels

    def pairwise(self, target: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
        """Official form: repeat the target S times and convolve every pair.

        Args:
            target: ``(B, 1, Ct, H, W)``.
            support: ``(B, S, Cs, H, W)``.

        Returns:
            ``(B, S, Co, H, W)`` pre-activation interactions.
        """
        b, s = support.shape[:2]
        xy = torch.cat([repeat(target, "b 1 c h w -> b s c h w", s=s), support], dim=2)
        out = super().forward(rearrange(xy, "b s c h w -> (b s) c h w"))
        return rearrange(out, "(b s) c h w -> b s c h w", b=b, s=s)

    def target_half(self, target: torch.Tensor) -> torch.Tensor:
        """``conv(t; W_t) + b``: ``(B, 1, Ct, H, W) -> (B, 1, Co, H, W)``."""
        w_t = self.weight[:, : self.target_channels]
        out = F.conv2d(rearrange(target, "b 1 c h w -> b c h w"), w_t, self.bias, padding=self.padding)
        return rearrange(out, "b c h w -> b 1 c h w")

    def support_half(self, support: torch.Tensor) -> torch.Tensor:
        """``conv(s_i; W_s)`` without bias: ``(B, S, Cs, H, W) -> (B, S, Co, H, W)``."""
        b = support.shape[0]
        w_s = self.weight[:, self.target_channels :]
        out = F.conv2d(rearrange(support, "b s c h w -> (b s) c h w"), w_s, None, padding=self.padding)
        return rearrange(out, "(b s) c h w -> b s c h w", b=b)

    def split(self, target: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
        """Split form, same result as :meth:`pairwise`: ``(B, S, Co, H, W)``."""
        return self.target_half(target) + self.support_half(support)

    def mean_over_support(
        self,
        target: torch.Tensor,
        support: torch.Tensor,
        activation: Callable[[torch.Tensor], torch.Tensor] | None,
    ) -> torch.Tensor:
        """``mean_i act(conv([t, s_i]))`` without materialising more than needed.

        With no activation the mean commutes with the (linear) conv, so the support half is one
        conv of the support mean instead of S convs.

        Args:
            target: ``(B, 1, Ct, H, W)``.
            support: ``(B, S, Cs, H, W)``.
            activation: Applied per pair before the mean, or ``None``.

        Returns:
            ``(B, 1, Co, H, W)``.
        """
        if activation is None:
            return self.target_half(target) + self.support_half(support.mean(dim=1, keepdim=True))
        return activation(self.split(target, support)).mean(dim=1, keepdim=True)
