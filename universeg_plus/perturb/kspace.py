"""k-space artefacts of MR acquisition: motion (per-line shifts / phase errors) and ghosting.

Both work on the 2D Fourier transform of each image plane and return the magnitude of the inverse
transform, so an unperturbed plane (values >= 0) comes back unchanged. Rows of the spectrum are the
phase-encode lines.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from .base import Params, Perturbation, check_number

__all__ = ["Ghosting", "Motion"]


class Motion(Perturbation):
    """Rigid motion during acquisition: each phase-encode line is, with probability ``fraction``,
    acquired with the object translated by ``(dy, dx)``, each uniform in ``+-max_shift`` (a fraction of
    the image side). A translation multiplies a k-space line by a linear phase, so corrupted lines
    carry phase errors; the result shows blurring and ghost edges along the phase-encode axis.

    Args:
        fraction: Probability that a line is corrupted, in [0, 1].
        max_shift: Largest translation as a fraction of the image side (``0.02`` = 2.6 px at 128 px).
        p: Probability per image plane.
        seed: Generator seed.
    """

    SEVERITY: ClassVar = (
        {"fraction": 0.05, "max_shift": 0.01},
        {"fraction": 0.10, "max_shift": 0.02},
        {"fraction": 0.15, "max_shift": 0.03},
        {"fraction": 0.25, "max_shift": 0.04},
        {"fraction": 0.35, "max_shift": 0.06},
    )
    name: ClassVar[str] = "motion"
    ARGS: ClassVar = ("fraction", "max_shift")

    def __init__(self, fraction: float = 0.15, max_shift: float = 0.03, p: float = 1.0, seed: int = 0) -> None:
        owner = type(self).__name__
        self.fraction = check_number("fraction", fraction, owner, high=1.0)
        self.max_shift = check_number("max_shift", max_shift, owner)
        super().__init__(p, seed)

    def _draw(self, n: int, h: int, w: int, g: torch.Generator) -> Params:
        lines = torch.rand(n, h, generator=g) < self.fraction
        unit = torch.rand(n, h, 2, generator=g) * 2 - 1
        shift = unit * self.max_shift * torch.tensor([h, w], dtype=unit.dtype)  # pixels (dy, dx)
        return {"lines": lines, "shift": shift * lines[..., None]}

    def _apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        h, w = x.shape[-2:]
        real = x.dtype
        ky = torch.fft.fftfreq(h, dtype=real, device=x.device)
        kx = torch.fft.fftfreq(w, dtype=real, device=x.device)
        shift = params["shift"].to(real)
        phase = -2 * math.pi * (ky[None, :, None] * shift[..., 0:1] + kx[None, None, :] * shift[..., 1:2])
        spectrum = torch.fft.fft2(x) * torch.polar(torch.ones_like(phase), phase)[:, None]
        return torch.fft.ifft2(spectrum).abs()


class Ghosting(Perturbation):
    """Ghosting: every ``k``-th phase-encode line (``k`` drawn in 2..6; rows or columns, drawn) is
    scaled by ``1 - intensity``, the DC line kept; the image gets ``k`` faint shifted copies.

    Args:
        intensity: Attenuation of the affected lines, in [0, 1] (ghost strength).
        p: Probability per image plane.
        seed: Generator seed.
    """

    SEVERITY: ClassVar = tuple({"intensity": v} for v in (0.15, 0.3, 0.45, 0.6, 0.8))
    name: ClassVar[str] = "ghosting"
    ARGS: ClassVar = ("intensity",)

    def __init__(self, intensity: float = 0.45, p: float = 1.0, seed: int = 0) -> None:
        self.intensity = check_number("intensity", intensity, type(self).__name__, high=1.0)
        super().__init__(p, seed)

    def _draw(self, n: int, h: int, w: int, g: torch.Generator) -> Params:
        return {
            "rows": torch.rand(n, generator=g) < 0.5,
            "period": torch.randint(2, 7, (n,), generator=g),
        }

    def _apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        h, w = x.shape[-2:]
        period = params["period"].to(x.device)[:, None]
        iy = torch.arange(h, device=x.device)[None]
        ix = torch.arange(w, device=x.device)[None]
        rows = ((iy % period == 0) & (iy != 0))[:, :, None].expand(-1, h, w)
        cols = ((ix % period == 0) & (ix != 0))[:, None, :].expand(-1, h, w)
        hit = torch.where(params["rows"].to(x.device)[:, None, None], rows, cols)
        scale = 1.0 - self.intensity * hit.to(x.dtype)
        return torch.fft.ifft2(torch.fft.fft2(x) * scale[:, None]).abs()
