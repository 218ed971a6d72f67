"""Segmentation metrics: Dice, IoU, sensitivity, specificity, HD95 (binary and per class).

Every function takes ``pred`` and ``ref`` of the same shape ``(..., H, W)`` (torch tensors or
NumPy arrays, bool or values in {0, 1}) and returns one value per leading index, a float32
``torch.Tensor`` of shape ``(...)``.

Empty masks: a ratio whose denominator is zero (Dice/IoU with both masks empty, sensitivity with
an empty reference, specificity with an all-foreground reference) returns ``empty_value``
(default 1.0). HD95 is 0 when both masks are empty and ``inf`` when exactly one is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "compute_metrics",
    "dice",
    "hd95",
    "iou",
    "per_class_metrics",
    "sensitivity",
    "specificity",
]

METRIC_NAMES = ("dice", "iou", "sensitivity", "specificity", "hd95")


def _as_bool(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray (..., H, W), got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (..., H, W), got {tuple(x.shape)}")
    if x.dtype == torch.bool:
        return x
    if x.is_complex():
        raise TypeError(f"{name} must be bool or real-valued {{0, 1}}, got dtype {x.dtype}")
    if not bool(((x == 0) | (x == 1)).all()):
        bad = x[(x != 0) & (x != 1)].flatten()[0].item()
        raise ValueError(f"{name} must be binary (bool or values in {{0, 1}}), found value {bad}")
    return x != 0


def _pair(pred: Any, ref: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p, r = _as_bool(pred, "pred"), _as_bool(ref, "ref")
    if p.shape != r.shape:
        raise ValueError(
            f"pred and ref must have the same shape (..., H, W), got {tuple(p.shape)} and {tuple(r.shape)}"
        )
    return p, r.to(p.device)


def _counts(pred: Any, ref: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    p, r = _pair(pred, ref)
    tp = (p & r).sum(dim=(-2, -1)).double()
    fp = (p & ~r).sum(dim=(-2, -1)).double()
    fn = (~p & r).sum(dim=(-2, -1)).double()
    tn = (~p & ~r).sum(dim=(-2, -1)).double()
    return tp, fp, fn, tn


def _ratio(num: torch.Tensor, den: torch.Tensor, empty_value: float) -> torch.Tensor:
    out = torch.where(den > 0, num / den.clamp_min(1), torch.full_like(num, float(empty_value)))
    return out.float()


def dice(pred: Any, ref: Any, empty_value: float = 1.0) -> torch.Tensor:
    """Dice coefficient ``2|P∩R| / (|P| + |R|)`` per sample, shape ``(...)``; both empty -> ``empty_value``."""
    tp, fp, fn, _ = _counts(pred, ref)
    return _ratio(2 * tp, 2 * tp + fp + fn, empty_value)


def iou(pred: Any, ref: Any, empty_value: float = 1.0) -> torch.Tensor:
    """Intersection over union ``|P∩R| / |P∪R|`` per sample, shape ``(...)``; both empty -> ``empty_value``."""
    tp, fp, fn, _ = _counts(pred, ref)
    return _ratio(tp, tp + fp + fn, empty_value)


def sensitivity(pred: Any, ref: Any, empty_value: float = 1.0) -> torch.Tensor:
    """Recall ``TP / (TP + FN)`` per sample, shape ``(...)``; empty reference -> ``empty_value``."""
    tp, _, fn, _ = _counts(pred, ref)
    return _ratio(tp, tp + fn, empty_value)


def specificity(pred: Any, ref: Any, empty_value: float = 1.0) -> torch.Tensor:
    """``TN / (TN + FP)`` per sample, shape ``(...)``; reference without background -> ``empty_value``."""
    _, fp, _, tn = _counts(pred, ref)
    return _ratio(tn, tn + fp, empty_value)


def _surface(mask: torch.Tensor) -> torch.Tensor:
    """Foreground pixels with a 4-neighbour outside the mask (the image border counts as outside)."""
    padded = torch.nn.functional.pad(mask[None, None].float(), (1, 1, 1, 1))[0, 0]
    inner = (
        (padded[:-2, 1:-1] > 0) & (padded[2:, 1:-1] > 0) & (padded[1:-1, :-2] > 0) & (padded[1:-1, 2:] > 0)
    )
    return mask & ~inner


def _directed(a: torch.Tensor, b: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """For each point of ``a`` (n, 2), the distance to the nearest point of ``b`` (m, 2)."""
    return torch.cat([torch.cdist(a[i : i + chunk], b).amin(dim=1) for i in range(0, len(a), chunk)])


def _hd95_single(p: torch.Tensor, r: torch.Tensor, scale: torch.Tensor) -> float:
    if not p.any() and not r.any():
        return 0.0
    if not p.any() or not r.any():
        return float("inf")
    sp = torch.nonzero(_surface(p)).double() * scale
    sr = torch.nonzero(_surface(r)).double() * scale
    d_pr = torch.quantile(_directed(sp, sr), 0.95)
    d_rp = torch.quantile(_directed(sr, sp), 0.95)
    return float(torch.maximum(d_pr, d_rp))


def hd95(pred: Any, ref: Any, spacing: Sequence[float] = (1.0, 1.0)) -> torch.Tensor:
    """95th-percentile symmetric Hausdorff distance between mask surfaces, per sample.

    The larger of the two directed 95th percentiles (pred surface -> ref surface and back), as in
    MONAI; surfaces are foreground pixels with a 4-neighbour in the background.

    Args:
        pred: ``(..., H, W)`` binary.
        ref: ``(..., H, W)`` binary.
        spacing: Pixel size ``(row, col)`` in physical units.

    Returns:
        Float32 tensor ``(...)``: 0 when both masks are empty, ``inf`` when exactly one is.
    """
    p, r = _pair(pred, ref)
    if len(spacing) != 2 or any(float(s) <= 0 for s in spacing):
        raise ValueError(f"spacing must be two positive numbers (row, col), got {tuple(spacing)}")
    scale = torch.tensor([float(s) for s in spacing], dtype=torch.float64, device=p.device)
    lead = p.shape[:-2]
    flat_p = p.reshape(-1, *p.shape[-2:]).cpu()
    flat_r = r.reshape(-1, *r.shape[-2:]).cpu()
    values = [_hd95_single(a, b, scale.cpu()) for a, b in zip(flat_p, flat_r)]
    return torch.tensor(values, dtype=torch.float32).reshape(lead)


def compute_metrics(
    pred: Any, ref: Any, spacing: Sequence[float] = (1.0, 1.0), empty_value: float = 1.0
) -> dict[str, float]:
    """All metrics for one 2D pair ``(H, W)``: keys dice, iou, sensitivity, specificity, hd95."""
    p, r = _pair(pred, ref)
    if p.ndim != 2:
        raise ValueError(f"compute_metrics takes one 2D pair (H, W), got shape {tuple(p.shape)}")
    return {
        "dice": float(dice(p, r, empty_value)),
        "iou": float(iou(p, r, empty_value)),
        "sensitivity": float(sensitivity(p, r, empty_value)),
        "specificity": float(specificity(p, r, empty_value)),
        "hd95": float(hd95(p, r, spacing)),
    }


def _labels(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray (H, W), got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2D label map (H, W), got shape {tuple(x.shape)}")
    if x.is_floating_point() and not bool((x == x.round()).all()):
        raise ValueError(f"{name} must hold integer labels, found non-integer values")
    return x.long()


def per_class_metrics(
    pred_labels: Any, ref_labels: Any, classes: Iterable[int], spacing: Sequence[float] = (1.0, 1.0)
) -> dict[int, dict[str, float]]:
    """One-vs-rest :func:`compute_metrics` for each label in ``classes`` of two ``(H, W)`` label maps."""
    p, r = _labels(pred_labels, "pred_labels"), _labels(ref_labels, "ref_labels")
    if p.shape != r.shape:
        raise ValueError(
            f"pred_labels and ref_labels must have the same shape, got {tuple(p.shape)} and {tuple(r.shape)}"
        )
    return {int(c): compute_metrics(p == int(c), r == int(c), spacing) for c in classes}
