"""Segmentation metrics: Dice, IoU, sensitivity, specificity, HD95 (binary and per class).

The batched functions take ``pred`` and ``ref`` of the same shape ``(..., H, W)`` (torch tensors
or NumPy arrays, bool or values in {0, 1}) and return one value per leading index, a float32
``torch.Tensor`` of shape ``(...)``; :func:`hd95` takes as many spatial axes as its ``spacing``
has entries (``(..., D, H, W)`` with a 3-entry spacing). :func:`compute_metrics` and
:func:`per_class_metrics` score one 2D image, 3D volume or N-D array as a whole.

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

def _as_tensor(x: Any, name: str, expected: str) -> torch.Tensor:
    """``x`` (a tensor, or a numpy array shared without copying when contiguous) as a tensor; TypeError otherwise."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray {expected}, got {type(x).__name__}")
    return x


def _as_bool(x: Any, name: str) -> torch.Tensor:
    x = _as_tensor(x, name, "(..., H, W)")
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
    """Foreground elements with a face neighbour outside the mask (outside the array counts as outside).

    ``mask`` is an N-D bool tensor; face neighbours are the 2N along the axes (4 in 2D, 6 in 3D).
    """
    padded = torch.nn.functional.pad(mask.float(), (1, 1) * mask.ndim) > 0
    inner = torch.ones_like(mask)
    centre = [slice(1, -1)] * mask.ndim
    for axis in range(mask.ndim):
        for lo, hi in ((None, -2), (2, None)):
            index = list(centre)
            index[axis] = slice(lo, hi)
            inner &= padded[tuple(index)]
    return mask & ~inner


def _directed(a: torch.Tensor, b: torch.Tensor, budget: int = 2**24) -> torch.Tensor:
    """For each point of ``a`` (n, d), the distance to the nearest point of ``b`` (m, d).

    Works in chunks of rows so that one distance block holds at most ``budget`` entries (up to
    4096 rows).
    """
    chunk = max(1, min(4096, budget // max(1, len(b))))
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


def _check_spacing(spacing: Sequence[float], ndim: int) -> tuple[float, ...]:
    values = tuple(spacing)
    if len(values) < 2 or any(not float(s) > 0 for s in values):
        raise ValueError(f"spacing must be positive numbers, one per spatial axis, got {values}")
    if len(values) > ndim:
        raise ValueError(f"spacing {values} names {len(values)} spatial axes but the masks have only {ndim}")
    return tuple(float(s) for s in values)


def hd95(pred: Any, ref: Any, spacing: Sequence[float] = (1.0, 1.0)) -> torch.Tensor:
    """95th-percentile symmetric Hausdorff distance between mask surfaces, per sample.

    The larger of the two directed 95th percentiles (pred surface -> ref surface and back), as in
    MONAI; surfaces are foreground elements with a face neighbour in the background (4 in 2D, 6 in
    3D). The number of spatial axes is ``len(spacing)``: the default scores ``(..., H, W)`` images,
    ``spacing=(sz, sy, sx)`` scores ``(..., D, H, W)`` volumes.

    Args:
        pred: ``(..., *spatial)`` binary.
        ref: ``(..., *spatial)`` binary, same shape.
        spacing: Element size along each spatial axis in physical units (e.g. mm), positive.

    Returns:
        Float32 tensor ``(...)``: 0 when both masks are empty, ``inf`` when exactly one is.
    """
    p, r = _pair(pred, ref)
    values = _check_spacing(spacing, p.ndim)
    k = len(values)
    scale = torch.tensor(values, dtype=torch.float64)
    lead = p.shape[: p.ndim - k]
    flat_p = p.reshape(-1, *p.shape[p.ndim - k :]).cpu()
    flat_r = r.reshape(-1, *r.shape[r.ndim - k :]).cpu()
    out = [_hd95_single(a, b, scale) for a, b in zip(flat_p, flat_r)]
    return torch.tensor(out, dtype=torch.float32).reshape(lead)


def compute_metrics(
    pred: Any, ref: Any, spacing: Sequence[float] | None = None, empty_value: float = 1.0
) -> dict[str, float]:
    """All metrics for one pair: a 2D image ``(H, W)``, a 3D volume ``(D, H, W)`` or any N-D array.

    Dice, IoU, sensitivity and specificity count every element; HD95 is measured in N-D.

    Args:
        pred: Binary array of N >= 2 axes.
        ref: Binary array of the same shape.
        spacing: Element size per axis (N entries; default 1 each), e.g. a NIfTI's voxel size in mm
            (``nibabel`` ``header.get_zooms()``) for HD95 in mm.
        empty_value: Value of a ratio whose denominator is zero (see the module docstring).

    Returns:
        Keys dice, iou, sensitivity, specificity, hd95 (floats).
    """
    p, r = _pair(pred, ref)
    sp = (1.0,) * p.ndim if spacing is None else tuple(spacing)
    if len(sp) != p.ndim:
        raise ValueError(
            f"spacing must have one entry per axis of the masks ({p.ndim} for shape {tuple(p.shape)}), got {sp}"
        )
    flat_p, flat_r = p.reshape(1, -1), r.reshape(1, -1)
    return {
        "dice": float(dice(flat_p, flat_r, empty_value)),
        "iou": float(iou(flat_p, flat_r, empty_value)),
        "sensitivity": float(sensitivity(flat_p, flat_r, empty_value)),
        "specificity": float(specificity(flat_p, flat_r, empty_value)),
        "hd95": float(hd95(p, r, sp)),
    }


def _labels(x: Any, name: str) -> torch.Tensor:
    x = _as_tensor(x, name, "label map")
    if x.ndim < 2:
        raise ValueError(f"{name} must be a label map (H, W), (D, H, W) or N-D, got shape {tuple(x.shape)}")
    if x.is_floating_point() and not bool((x == x.round()).all()):
        raise ValueError(f"{name} must hold integer labels, found non-integer values")
    return x.long()


def per_class_metrics(
    pred_labels: Any, ref_labels: Any, classes: Iterable[int], spacing: Sequence[float] | None = None
) -> dict[int, dict[str, float]]:
    """One-vs-rest :func:`compute_metrics` for each label in ``classes`` of two label maps.

    The maps are 2D ``(H, W)``, 3D ``(D, H, W)`` or N-D integer arrays of the same shape; ``spacing``
    as in :func:`compute_metrics`.
    """
    p, r = _labels(pred_labels, "pred_labels"), _labels(ref_labels, "ref_labels")
    if p.shape != r.shape:
        raise ValueError(
            f"pred_labels and ref_labels must have the same shape, got {tuple(p.shape)} and {tuple(r.shape)}"
        )
    return {int(c): compute_metrics(p == int(c), r == int(c), spacing) for c in classes}
