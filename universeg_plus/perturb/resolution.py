"""Loss of sharpness: Gaussian blur and resolution loss (down- then up-sampling)."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..data.filters import gaussian_blur
from .base import Params, Perturbation, check_number

__all__ = ["GaussianBlur", "ResolutionLoss"]


class GaussianBlur(Perturbation):
    """Separable Gaussian blur (reflect padding).

    Args:
        sigma: Standard deviation in pixels of the input.
        p: Probability per image plane.
        seed: Generator seed.
    """

    SEVERITY: ClassVar = tuple({"sigma": v} for v in (0.5, 1.0, 1.5, 2.0, 3.0))
    name: ClassVar[str] = "gaussian_blur"
    ARGS: ClassVar = ("sigma",)

    def __init__(self, sigma: float = 1.5, p: float = 1.0, seed: int = 0) -> None:
        self.sigma = check_number("sigma", sigma, type(self).__name__)
        super().__init__(p, seed)

    def _draw(self, n: int, h: int, w: int, g: torch.Generator) -> Params:
        return {"sigma": torch.full((n,), self.sigma)}

    def _apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        radius = max(1, math.ceil(3 * self.sigma))
        return gaussian_blur(x, params["sigma"], max_radius=radius, radius=radius)


class ResolutionLoss(Perturbation):
    """Down-sample by ``factor`` (antialiased bilinear) and up-sample back (bilinear): a
    low-resolution acquisition shown at the original grid.

    Args:
        factor: Down-sampling factor >= 1 (the coarse grid is ``round(H / factor) x round(W / factor)``).
        p: Probability per image plane.
        seed: Generator seed.
    """

    SEVERITY: ClassVar = tuple({"factor": v} for v in (1.5, 2.0, 3.0, 4.0, 6.0))
    name: ClassVar[str] = "resolution_loss"
    ARGS: ClassVar = ("factor",)

    def __init__(self, factor: float = 3.0, p: float = 1.0, seed: int = 0) -> None:
        self.factor = check_number("factor", factor, type(self).__name__, low=1.0)
        super().__init__(p, seed)

    def _draw(self, n: int, h: int, w: int, g: torch.Generator) -> Params:
        return {}

    def _apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        h, w = x.shape[-2:]
        coarse = (max(1, round(h / self.factor)), max(1, round(w / self.factor)))
        if coarse == (h, w):
            return x
        low = F.interpolate(x, size=coarse, mode="bilinear", antialias=True, align_corners=False)
        return F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
