"""Building blocks of the CrossConv network, named so that the official state_dict loads as is.

Key layout (official v1): ``cross.cross_conv.{weight,bias}``, ``target.vmapped.conv.{weight,bias}``,
``support.vmapped.conv.{weight,bias}`` per block, and ``out_conv.conv.{weight,bias}``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange
from torch import nn

from ..config import Activation
from .cross_conv import CrossConv2d

__all__ = ["ConvOp", "CrossBlock", "CrossOp", "Vmap", "make_activation"]


def make_activation(name: Activation | None, negative_slope: float = 0.01) -> nn.Module | None:
    """The activation module for a config name, or ``None``."""
    if name is None:
        return None
    if name == "leakyrelu":
        return nn.LeakyReLU(negative_slope)
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"unknown activation {name!r}; expected one of 'leakyrelu', 'relu', 'gelu'")


def _kaiming_gain_name(act: nn.Module | None) -> str:
    if isinstance(act, nn.LeakyReLU):
        return "leaky_relu"
    if act is None:
        return "linear"
    return "relu"


class ConvOp(nn.Module):
    """``conv`` (padding keeps H, W) followed by an optional activation. ``(N, Ci, H, W) -> (N, Co, H, W)``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, activation: nn.Module | None
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.act = activation
        nn.init.kaiming_normal_(self.conv.weight, nonlinearity=_kaiming_gain_name(activation))
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if self.act is None else self.act(x)


class Vmap(nn.Module):
    """Applies a 4D module over the group axis: ``(B, S, C, H, W) -> (B, S, C', H', W')``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.vmapped = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        y = self.vmapped(rearrange(x, "b s c h w -> (b s) c h w"))
        return rearrange(y, "(b s) c h w -> b s c h w", b=b)


class CrossOp(nn.Module):
    """The cross-conv plus its optional activation; holds ``cross_conv``."""

    def __init__(
        self,
        target_channels: int,
        support_channels: int,
        out_channels: int,
        activation: nn.Module | None,
    ) -> None:
        super().__init__()
        self.cross_conv = CrossConv2d(target_channels, support_channels, out_channels, kernel_size=3)
        self.act = activation
        nn.init.kaiming_normal_(self.cross_conv.weight, nonlinearity=_kaiming_gain_name(activation))
        nn.init.zeros_(self.cross_conv.bias)

    def _activate(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.act is None else self.act(x)

    def forward(
        self, target: torch.Tensor, support: torch.Tensor, pairwise: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B,1,Ct,H,W), (B,S,Cs,H,W) -> new target (B,1,Co,H,W), new support (B,S,Co,H,W)``."""
        conv = self.cross_conv
        inter = conv.pairwise(target, support) if pairwise else conv.split(target, support)
        inter = self._activate(inter)
        return inter.mean(dim=1, keepdim=True), inter

    def target_only(self, target: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
        """New target alone, ``(B, 1, Co, H, W)``, by the cheapest exact route."""
        return self.cross_conv.mean_over_support(target, support, self.act)


class CrossBlock(nn.Module):
    """Cross-op, then a 3x3 conv + activation on the target and, separately, on the support."""

    def __init__(
        self,
        target_channels: int,
        support_channels: int,
        width: int,
        activation: Callable[[], nn.Module | None],
        cross_activation: nn.Module | None,
        target_out: int | None = None,
        target_activation: bool = True,
    ) -> None:
        super().__init__()
        self.cross = CrossOp(target_channels, support_channels, width, cross_activation)
        t_act = activation() if target_activation else None
        self.target = Vmap(ConvOp(width, target_out or width, 3, t_act))
        self.support = Vmap(ConvOp(width, width, 3, activation()))

    def forward(
        self, target: torch.Tensor, support: torch.Tensor, pairwise: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B,1,Ct,H,W), (B,S,Cs,H,W) -> (B,1,C,H,W), (B,S,C,H,W)``."""
        target, support = self.cross(target, support, pairwise=pairwise)
        return self.target(target), self.support(support)

    def forward_target(self, target: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
        """Only the new target ``(B, 1, C, H, W)``; the support stream is not computed."""
        return self.target(self.cross.target_only(target, support))
