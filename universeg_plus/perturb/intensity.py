"""Intensity corruptions: contrast (gamma and window), intensity shift, bias field."""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from ..data.filters import smooth_noise
from .base import Params, Perturbation, check_integer, check_number

__all__ = ["BiasField", "Contrast", "IntensityShift"]


def _random_sign(n: int, g: torch.Generator) -> torch.Tensor:
    """``(n,)`` float, each +1 or -1 with even odds."""
    return torch.where(torch.rand(n, generator=g) < 0.5, 1.0, -1.0)


class Contrast(Perturbation):
    """Gamma then window: ``y = x ** (gamma ** s)`` with a drawn sign ``s = +-1`` (darker or
    brighter mid-tones), then the window ``[clip, 1 - clip]`` stretched to [0, 1] (the extremes saturate).

    Args:
        gamma: Gamma factor >= 1 (its inverse is used for ``s = -1``).
        clip: Fraction of the range saturated at each end, in [0, 0.5).
        p: Probability per image plane.
        seed: Generator seed.
    """

    SEVERITY: ClassVar = (
        {"gamma": 1.15, "clip": 0.0},
        {"gamma": 1.3, "clip": 0.03},
        {"gamma": 1.5, "clip": 0.06},
        {"gamma": 1.75, "clip": 0.10},
        {"gamma": 2.1, "clip": 0.15},
    )
    name: ClassVar[str] = "contrast"
    ARGS: ClassVar = ("gamma", "clip")

    def __init__(self, gamma: float = 1.5, clip: float = 0.06, p: float = 1.0, seed: int = 0) -> None:
        owner = type(self).__name__
        self.gamma = check_number("gamma", gamma, owner, low=1.0)
        self.clip = check_number("clip", clip, owner, high=0.5, high_open=True)
        super().__init__(p, seed)

    def _draw(self, n: int, h: int, w: int, g: torch.Generator) -> Params:
        return {"sign": _random_sign(n, g)}

    def _apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        gamma = torch.exp(params["sign"].to(x) * math.log(self.gamma)).view(-1, 1, 1, 1)
        y = x.clamp_min(0) ** gamma
        return (y - self.clip) / (1.0 - 2.0 * self.clip)


class IntensityShift(Perturbation):
    """``x + s * offset`` with a drawn sign ``s = +-1``, clipped to [0, 1].

    Args:
        offset: Shift magnitude (intensity units).
        p: Probability per image plane.
        seed: Generator seed.
    """

    SEVERITY: ClassVar = tuple({"offset": v} for v in (0.05, 0.10, 0.15, 0.20, 0.30))
    name: ClassVar[str] = "intensity_shift"
    ARGS: ClassVar = ("offset",)

    def __init__(self, offset: float = 0.15, p: float = 1.0, seed: int = 0) -> None:
        self.offset = check_number("offset", offset, type(self).__name__)
        super().__init__(p, seed)

    def _draw(self, n: int, h: int, w: int, g: torch.Generator) -> Params:
        return {"sign": _random_sign(n, g)}

    def _apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return x + (params["sign"].to(x) * self.offset).view(-1, 1, 1, 1)


class BiasField(Perturbation):
    """Smooth multiplicative intensity inhomogeneity (MR bias field): ``x * exp(strength * f)``,
    ``f`` a smooth random field (``cells`` coarse cells along the longer side, bicubic) scaled to
    ``max |f| = 1``: gains lie in ``[exp(-strength), exp(strength)]``; clipped to [0, 1].

    Args:
        strength: Largest log-gain.
        cells: Coarseness of the field (fewer = smoother).
        p: Probability per image plane.
        seed: Generator seed.
    """

    SEVERITY: ClassVar = tuple({"strength": v} for v in (0.1, 0.2, 0.3, 0.45, 0.6))
    name: ClassVar[str] = "bias_field"
    ARGS: ClassVar = ("strength", "cells")

    def __init__(self, strength: float = 0.3, cells: int = 4, p: float = 1.0, seed: int = 0) -> None:
        owner = type(self).__name__
        self.strength = check_number("strength", strength, owner)
        self.cells = check_integer("cells", cells, owner, low=2)
        super().__init__(p, seed)

    def _draw(self, n: int, h: int, w: int, g: torch.Generator) -> Params:
        field = smooth_noise(n, (h, w), self.cells, generator=g)
        return {"field": field / field.flatten(1).abs().amax(dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)}

    def _apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return x * torch.exp(self.strength * params["field"].to(x))
