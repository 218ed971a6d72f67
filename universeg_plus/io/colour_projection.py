"""How an RGB image becomes the network's one channel: a :class:`ColourProjection` (weights and a range).

The projection is data (three weights, two numbers), so it travels with a support set
(:attr:`universeg_plus.support.SupportSet.colour`, saved in its file) and to Ray workers, and
projects every target the way the support images were projected. Fitting one on a support set
(the Fisher direction, the leave-one-out choice) is :mod:`universeg_plus.colour`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .image_rules import LUMA

__all__ = ["PROJECTION_NAMES", "ColourProjection", "rgb01"]

#: The projections there are: the input rules' luma, one channel, or a fitted Fisher direction.
PROJECTION_NAMES = ("luma", "red", "green", "blue", "fisher")


@dataclass(frozen=True)
class ColourProjection:
    """``rgb (H, W, 3)`` -> ``(H, W)`` float32 in [0, 1]: ``clip((rgb @ weights - low) / (high - low))``.

    Attributes:
        name: ``"luma"``, ``"red"``, ``"green"``, ``"blue"`` or ``"fisher"``.
        weights: Three channel weights (on values in [0, 1]).
        low, high: The projected values mapped to 0 and 1 (support percentiles 1 and 99 for Fisher).
    """

    name: str
    weights: tuple[float, float, float]
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in PROJECTION_NAMES:
            raise ValueError(f"ColourProjection name must be one of {PROJECTION_NAMES}, got {self.name!r}")
        if len(self.weights) != 3 or not all(math.isfinite(float(v)) for v in (*self.weights, self.low, self.high)):
            raise ValueError(
                f"ColourProjection needs three finite weights and finite low/high, got weights {self.weights}, "
                f"low {self.low}, high {self.high}"
            )
        if not self.high > self.low:
            raise ValueError(f"ColourProjection needs high > low, got low {self.low}, high {self.high}")

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        x = rgb01(rgb)
        y = (x @ np.asarray(self.weights, np.float64) - self.low) / (self.high - self.low)
        return np.clip(y, 0.0, 1.0).astype(np.float32)

    def as_dict(self) -> dict[str, Any]:
        """``{"name", "weights", "low", "high"}``: JSON-ready (reports, the CLI)."""
        return {"name": self.name, "weights": list(self.weights), "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColourProjection:
        """The projection :meth:`as_dict` wrote (ValueError naming what is wrong)."""
        if not isinstance(data, dict) or set(data) != {"name", "weights", "low", "high"}:
            raise ValueError(f"a colour projection needs name, weights, low and high, got {data!r}")
        weights = data["weights"]
        if not isinstance(weights, (list, tuple)) or len(weights) != 3:
            raise ValueError(f"a colour projection needs three weights, got {weights!r}")
        return cls(str(data["name"]), tuple(float(v) for v in weights), float(data["low"]), float(data["high"]))

    @property
    def is_luma(self) -> bool:
        """Whether this is the input rules' own luma (what no projection means)."""
        return self == ColourProjection("luma", LUMA)


def rgb01(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` -> float64 in [0, 1]: uint16 / 65535, other integers / 255, floats as given
    (divided by 255 when above 1, i.e. 0-255 floats)."""
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {a.shape}")
    x = a.astype(np.float64)
    if a.dtype == np.uint16:
        return x / 65535.0
    return x / 255.0 if np.issubdtype(a.dtype, np.integer) or (x.size and x.max() > 1.0) else x
