"""Is the uncertainty right where it matters? Calibration and error detection away from easy background.

Over all pixels, a segmenter looks calibrated and its errors look easy to find, because almost every
pixel is confidently background. These metrics look where the question is hard:

* :func:`relevant_pixels`: pixels the model gives more than ``floor`` (0.02) foreground probability,
  or that are foreground in the truth;
* :func:`expected_calibration_error`: ECE of the foreground probability (equal-width bins) over a
  pixel pool, e.g. the relevant pixels of many images;
* :func:`boundary_band`: pixels within ``fraction`` (2%) of the image's longer side of the predicted
  or the true boundary, where the errors are;
* :func:`auroc`: area under the ROC of a score separating positives (wrong pixels) from negatives;
* :func:`spearman`: rank correlation (ties averaged), e.g. image uncertainty vs ``1 - Dice``;
* :func:`candidate_dice`: best, mean and every Dice of K candidate masks against the truth.

Arrays are NumPy or torch; pools are flattened.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..metrics import dice

__all__ = [
    "auroc",
    "boundary",
    "boundary_band",
    "candidate_dice",
    "expected_calibration_error",
    "relevant_pixels",
    "spearman",
]


def _np(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"{name} must be a numpy.ndarray or torch.Tensor, got {type(x).__name__}")


def relevant_pixels(prob: Any, ref: Any, floor: float = 0.02) -> np.ndarray:
    """``prob > floor`` or ``ref`` foreground: bool, the shape of ``prob`` (same shape as ``ref``)."""
    p, r = _np(prob, "prob"), _np(ref, "ref")
    if p.shape != r.shape:
        raise ValueError(f"prob and ref must have the same shape, got {p.shape} and {r.shape}")
    return (p > floor) | (r > 0)


def expected_calibration_error(prob: Any, ref: Any, where: Any | None = None, bins: int = 15) -> float:
    """ECE of foreground probabilities against binary truth over a pixel pool.

    ``sum_b (n_b / n) |mean prob_b - foreground rate_b|`` over ``bins`` equal-width bins of [0, 1].

    Args:
        prob: Probabilities in [0, 1], any shape.
        ref: Truth (bool or {0, 1}), same shape.
        where: Optional bool mask of the pixels to count (same shape).
        bins: Number of bins.

    Returns:
        ECE in [0, 1]; NaN for an empty pool.
    """
    p = _np(prob, "prob").astype(np.float64).ravel()
    r = (_np(ref, "ref") > 0).astype(np.float64).ravel()
    if p.shape != r.shape:
        raise ValueError(f"prob and ref must have the same size, got {p.size} and {r.size}")
    if where is not None:
        w = _np(where, "where").astype(bool).ravel()
        p, r = p[w], r[w]
    if p.size == 0:
        return float("nan")
    b = np.minimum((p * bins).astype(np.int64), bins - 1)
    n = np.bincount(b, minlength=bins)
    sp = np.bincount(b, weights=p, minlength=bins)
    sr = np.bincount(b, weights=r, minlength=bins)
    return float(np.abs(sp - sr).sum() / p.size)


def boundary(mask: Any) -> torch.Tensor:
    """Pixels of a binary ``(H, W)`` mask with a 4-neighbour of the other value (both sides of the edge)."""
    m = torch.as_tensor(_np(mask, "mask") > 0)
    if m.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {tuple(m.shape)}")
    f = m.float()[None, None]
    grown = F.max_pool2d(f, 3, stride=1, padding=1)
    shrunk = -F.max_pool2d(-f, 3, stride=1, padding=1)
    return ((grown - shrunk) > 0)[0, 0]


def boundary_band(pred: Any, ref: Any, fraction: float = 0.02) -> np.ndarray:
    """Pixels within ``fraction`` of the longer side (Euclidean, at least 1 px) of either boundary.

    Args:
        pred: Predicted binary mask ``(H, W)``.
        ref: True binary mask ``(H, W)``.
        fraction: Band half-width as a fraction of ``max(H, W)``.

    Returns:
        ``(H, W)`` bool.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    edges = (boundary(pred) | boundary(ref)).float()
    h, w = edges.shape
    r = max(1, round(fraction * max(h, w)))
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    disk = ((yy**2 + xx**2) <= r * r).float()[None, None]
    band = F.conv2d(edges[None, None], disk, padding=r)[0, 0] > 0.5
    return band.numpy()


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], len(x)]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def auroc(score: Any, positive: Any) -> float:
    """Area under the ROC curve of ``score`` for ``positive`` (Mann-Whitney, ties count half).

    Returns NaN when the pool has no positive or no negative.
    """
    s = _np(score, "score").astype(np.float64).ravel()
    y = _np(positive, "positive").astype(bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"score and positive must have the same size, got {s.size} and {y.size}")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spearman(x: Any, y: Any) -> float:
    """Spearman rank correlation (ties averaged); NaN for fewer than 3 values or a constant input."""
    a = np.asarray(_np(x, "x") if not isinstance(x, (list, tuple)) else x, dtype=np.float64).ravel()
    b = np.asarray(_np(y, "y") if not isinstance(y, (list, tuple)) else y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same length, got {a.size} and {b.size}")
    if a.size < 3:
        return float("nan")
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt(float((ra**2).sum() * (rb**2).sum()))
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def candidate_dice(masks: Any, ref: Any, empty_value: float = 1.0) -> dict[str, Any]:
    """Dice of each of K candidate masks ``(K, H, W)`` against ``ref`` ``(H, W)``.

    Returns:
        ``{"best": max, "mean": mean, "each": list of K floats}``.
    """
    m = torch.as_tensor(_np(masks, "masks") > 0)
    r = torch.as_tensor(_np(ref, "ref") > 0)
    if m.ndim != 3 or tuple(m.shape[1:]) != tuple(r.shape):
        raise ValueError(f"masks must be (K, H, W) with (H, W) = ref's {tuple(r.shape)}, got {tuple(m.shape)}")
    each = dice(m, r.expand_as(m), empty_value).tolist()
    return {"best": max(each), "mean": sum(each) / len(each), "each": each}
