"""Uncertainty for the eye: a heat map of values in [0, 1] and region outlines drawn on an RGB image.

NumPy only (no matplotlib): the colour map is a fixed perceptually ordered ramp (black, purple,
orange, yellow: close to matplotlib's ``inferno``) interpolated linearly.
"""

from __future__ import annotations

import numpy as np

__all__ = ["draw_outlines", "heat_map"]

# (position, R, G, B) anchors of an inferno-like ramp
_RAMP = np.array(
    [
        [0.00, 0, 0, 4],
        [0.25, 87, 16, 110],
        [0.50, 188, 55, 84],
        [0.75, 249, 142, 9],
        [1.00, 252, 255, 164],
    ],
    dtype=np.float64,
)


def heat_map(values: np.ndarray) -> np.ndarray:
    """``(H, W)`` values in [0, 1] (clipped; NaN as 0) -> ``(H, W, 3)`` uint8 RGB, dark = low, bright = high."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must be an (H, W) map, got shape {v.shape}")
    v = np.clip(np.nan_to_num(v, nan=0.0), 0.0, 1.0)
    rgb = np.stack([np.interp(v, _RAMP[:, 0], _RAMP[:, c]) for c in (1, 2, 3)], axis=-1)
    return np.round(rgb).astype(np.uint8)


def draw_outlines(rgb: np.ndarray, outlines: np.ndarray, colour: tuple[int, int, int] = (0, 255, 255)) -> np.ndarray:
    """Paint the non-zero pixels of ``outlines`` ``(H, W)`` onto a copy of ``rgb`` ``(H, W, 3)`` uint8."""
    out = np.array(rgb, dtype=np.uint8, copy=True)
    o = np.asarray(outlines)
    if out.ndim != 3 or out.shape[:2] != o.shape:
        raise ValueError(f"rgb (H, W, 3) and outlines (H, W) must match, got {out.shape} and {o.shape}")
    out[o != 0] = colour
    return out
