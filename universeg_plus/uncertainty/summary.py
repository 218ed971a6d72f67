"""One target's K samples at its own size -> masks, calibrated mean, uncertainty map, regions, score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .aggregate import expected_dice_error, uncertainty_map
from .calibration import Calibration
from .regions import Region, uncertain_regions

__all__ = ["SampleSummary", "label_map", "summarize_samples"]


def label_map(probs: np.ndarray, classes: Sequence[int], threshold: float) -> np.ndarray:
    """``(..., C, H, W)`` probabilities -> ``(..., H, W)`` labels: the most probable class, 0 below ``threshold``."""
    labels = np.asarray(classes)[probs.argmax(axis=-3)]
    out = np.where(probs.max(axis=-3) > threshold, labels, 0)
    return out.astype(np.uint8 if max(classes) < 256 else np.int32)


@dataclass
class SampleSummary:
    """K samples of one target, at its own size.

    Attributes:
        masks: ``(K, H, W)`` label maps, one per sample (sample 0 the plain prediction when the
            plan starts with it).
        mean: ``(C, H, W)`` float32 calibrated foreground probability per class: of the ``point``
            sample (the plain prediction), or the samples' mean when no point is given.
        mean_mask: ``(H, W)`` label map of that (uncalibrated) probability at the threshold.
        uncertainty: ``(H, W)`` float32 in [0, 1] (the largest over classes).
        regions: Connected high-uncertainty regions, ranked.
        score: Image uncertainty score in [0, 1]: expected ``1 - Dice`` of ``mean_mask`` under the
            model's own (uncalibrated) probability, the largest over classes. On the validation
            tasks it ranks images by their error better than the same under calibrated
            probabilities (docs/uncertainty.md).
    """

    masks: np.ndarray
    mean: np.ndarray
    mean_mask: np.ndarray
    uncertainty: np.ndarray
    regions: list[Region] = field(default_factory=list)
    score: float = 0.0


def _per_class(cal: Calibration | Sequence[Calibration] | None, n: int) -> list[Calibration]:
    if cal is None:
        return [Calibration()] * n
    if isinstance(cal, Calibration):
        return [cal] * n
    cals = list(cal)
    if len(cals) != n:
        raise ValueError(f"{len(cals)} calibrations for {n} classes")
    return cals


def summarize_samples(
    samples: np.ndarray | torch.Tensor,
    classes: Sequence[int],
    threshold: float = 0.5,
    calibration: Calibration | Sequence[Calibration] | None = None,
    kind: str = "error",
    level: float | None = None,
    top: int = 5,
    levels: Sequence[float | None] | None = None,
    sample_calibration: Calibration | Sequence[Calibration] | None = None,
    point: int | None = None,
) -> SampleSummary:
    """Aggregate K probability maps of one target.

    Args:
        samples: ``(K, C, H, W)`` probabilities in [0, 1] at the target's size (C = ``len(classes)``).
        classes: Foreground labels, in class-axis order.
        threshold: Foreground cut-off.
        calibration: Map applied to the reported probability (``None``: none), or one per class.
        kind: Uncertainty kind (:data:`~universeg_plus.uncertainty.aggregate.UNCERTAINTY_KINDS`).
        level: Uncertainty level of the regions (default: 0.2 for ``"error"``, a pixel at least one
            chance in five of being wrong; 0.5 for the other kinds).
        top: Regions kept.
        levels: Per sample, the probability level its mask is cut at (``None``: ``threshold``);
            default: every mask at ``threshold``.
        sample_calibration: Map applied to each sample's probabilities before its level cut
            (so that levels are probabilities), or one per class.
        point: The sample the reported probability, mask and uncertainty come from (the Predictor
            passes 0, the plain prediction: on the held-out tasks the mean of the augmented
            subset views had lower Dice, -0.02, and worse calibration); ``None``: the samples' mean.
    """
    s = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    if s.ndim != 4 or s.shape[1] != len(classes):
        raise ValueError(f"samples must be (K, C, H, W) with C = {len(classes)} classes, got {tuple(s.shape)}")
    if point is not None and not 0 <= point < s.shape[0]:
        raise ValueError(f"point must index one of the {s.shape[0]} samples, got {point}")
    raw = s.mean(0) if point is None else s[point]
    cals = _per_class(calibration, len(classes))
    mean = torch.stack([cals[c](raw[c]) for c in range(len(classes))])
    mean_mask = label_map(raw.numpy(), classes, threshold)
    lab = torch.as_tensor(mean_mask.astype(np.int64))
    fg = torch.stack([lab == c for c in classes])
    per_class = torch.stack(
        [uncertainty_map(s[:, c], mean[c], kind, threshold, mask=fg[c]) for c in range(len(classes))]
    )
    unc = per_class.amax(0).numpy().astype(np.float32)
    cuts = list(levels) if levels is not None else [None] * s.shape[0]
    if len(cuts) != s.shape[0]:
        raise ValueError(f"{len(cuts)} levels for {s.shape[0]} samples")
    scals = _per_class(sample_calibration, len(classes))
    masks = np.stack(
        [label_map(s[i].numpy() if cut is None else torch.stack([scals[c](s[i, c]) for c in range(len(classes))]).numpy(),
                   classes, threshold if cut is None else cut)
         for i, cut in enumerate(cuts)]
    )
    score = float(expected_dice_error(raw, fg).amax())
    return SampleSummary(masks, mean.numpy().astype(np.float32), mean_mask, unc,
                         uncertain_regions(unc, _region_level(kind, level), top), score)


def _region_level(kind: str, level: float | None) -> float:
    """Regions' uncertainty floor: given, or 0.2 for the error probability (0.5 for the other kinds)."""
    if level is not None:
        return level
    return 0.2 if kind == "error" else 0.5
