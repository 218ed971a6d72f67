"""Additive Gaussian noise and Rician noise (the noise of MRI magnitude images)."""

from __future__ import annotations

from typing import ClassVar

import torch

from .base import Params, Perturbation, check_number

__all__ = ["GaussianNoise", "RicianNoise"]

_STD = (0.02, 0.04, 0.07, 0.10, 0.15)


class _PixelNoise(Perturbation):
    """Noise of standard deviation ``std`` drawn per pixel in ``_CHANNELS`` Gaussian channels."""

    SEVERITY: ClassVar = tuple({"std": s} for s in _STD)
    ARGS: ClassVar = ("std",)
    _CHANNELS: ClassVar[int] = 1

    def __init__(self, std: float = 0.05, p: float = 1.0, seed: int = 0) -> None:
        self.std = check_number("std", std, type(self).__name__)
        super().__init__(p, seed)

    def _draw(self, n: int, h: int, w: int, g: torch.Generator) -> Params:
        return {"noise": torch.randn(n, self._CHANNELS, h, w, generator=g) * self.std}


class GaussianNoise(_PixelNoise):
    """``x + std * n``, ``n ~ N(0, 1)`` per pixel, clipped to [0, 1].

    Args:
        std: Noise standard deviation (intensity units, image range [0, 1]).
        p: Probability per image plane.
        seed: Generator seed.
    """

    name: ClassVar[str] = "gaussian_noise"

    def _apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return x + params["noise"].to(x.dtype)


class RicianNoise(_PixelNoise):
    """Rician noise: ``sqrt((x + std * n1)^2 + (std * n2)^2)``, the magnitude of a complex MR signal
    with Gaussian noise in both channels; clipped to [0, 1]. It also brightens dark regions.

    Args:
        std: Standard deviation of each Gaussian channel.
        p: Probability per image plane.
        seed: Generator seed.
    """

    name: ClassVar[str] = "rician_noise"
    _CHANNELS: ClassVar[int] = 2

    def _apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        noise = params["noise"].to(x.dtype)
        return torch.sqrt((x + noise[:, :1]) ** 2 + noise[:, 1:] ** 2)
