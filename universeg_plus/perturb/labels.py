"""Label noise for support masks: dilation or erosion of the boundary, and dropped masks."""

from __future__ import annotations

from typing import ClassVar

import torch

from ..data.filters import dilate, erode
from .base import Params, Perturbation, check_integer, check_number

__all__ = ["LabelNoise"]


class LabelNoise(Perturbation):
    """Annotation errors on binary masks: each mask is dilated or eroded (drawn, even odds) by
    ``iterations`` 3x3 steps, and dropped (set to all background) with probability ``drop``.
    Erosion may empty a small structure.

    Args:
        iterations: Dilation/erosion steps (pixels of boundary error).
        drop: Probability that a mask is emptied, in [0, 1].
        p: Probability per mask.
        seed: Generator seed.
    """

    SEVERITY: ClassVar = (
        {"iterations": 1, "drop": 0.0},
        {"iterations": 2, "drop": 0.05},
        {"iterations": 3, "drop": 0.10},
        {"iterations": 4, "drop": 0.15},
        {"iterations": 6, "drop": 0.25},
    )
    kind: ClassVar = "mask"
    name: ClassVar[str] = "label_noise"
    ARGS: ClassVar = ("iterations", "drop")

    def __init__(self, iterations: int = 3, drop: float = 0.1, p: float = 1.0, seed: int = 0) -> None:
        owner = type(self).__name__
        self.iterations = check_integer("iterations", iterations, owner, low=0)
        self.drop = check_number("drop", drop, owner, high=1.0)
        super().__init__(p, seed)

    def _draw(self, n: int, h: int, w: int, g: torch.Generator) -> Params:
        grow = torch.rand(n, generator=g) < 0.5
        dropped = torch.rand(n, generator=g) < self.drop
        return {"dilate": grow * self.iterations, "erode": (~grow) * self.iterations, "drop": dropped}

    def _apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        m = dilate(x, params["dilate"], self.iterations)
        m = erode(m, params["erode"], self.iterations)
        return torch.where(params["drop"].view(-1, 1, 1, 1), torch.zeros_like(m), m)
