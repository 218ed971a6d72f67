"""Where to look: connected regions of high uncertainty, ranked by area x mean uncertainty.

::

    regions = uncertain_regions(uncertainty, level=0.5, top=5)
    regions[0].bbox      # (row0, col0, row1, col1), rows/cols end-exclusive
    regions[0].score     # area * mean uncertainty: how much doubt the region holds
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


__all__ = ["Region", "connected_components", "region_outlines", "uncertain_regions"]


@dataclass(frozen=True)
class Region:
    """One connected region of high uncertainty.

    Attributes:
        rank: 1 for the region most worth a look.
        area: Pixels in the region.
        mean_uncertainty: Mean uncertainty inside it, in [0, 1].
        score: ``area * mean_uncertainty``.
        bbox: ``(row0, col0, row1, col1)``, end-exclusive, at the map's size.
        centroid: ``(row, col)`` of its pixels.
        mask: ``(H, W)`` bool, the region's pixels.
    """

    rank: int
    area: int
    mean_uncertainty: float
    score: float
    bbox: tuple[int, int, int, int]
    centroid: tuple[float, float]
    mask: np.ndarray

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (no pixel mask)."""
        return {
            "rank": self.rank,
            "area": self.area,
            "mean_uncertainty": round(self.mean_uncertainty, 4),
            "score": round(self.score, 2),
            "bbox": list(self.bbox),
            "centroid": [round(c, 1) for c in self.centroid],
        }


def connected_components(mask: Any) -> tuple[np.ndarray, int]:
    """8-connected components of a binary ``(H, W)`` mask: ``(labels int32 (H, W), count)``, 0 = outside.

    SciPy's ``ndimage.label`` when SciPy is installed; otherwise label propagation by 3x3
    max-pooling with pointer jumping (torch only; same labels up to numbering, slower on large blobs).
    Labels are numbered in the order of each component's first pixel (row-major) either way.
    """
    m = torch.as_tensor(np.asarray(mask) > 0)
    if m.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {tuple(m.shape)}")
    try:
        from scipy import ndimage
    except ImportError:
        return _components_torch(m)
    labels, n = ndimage.label(m.numpy(), structure=np.ones((3, 3), dtype=bool))
    return labels.astype(np.int32), int(n)


def _components_torch(m: torch.Tensor) -> tuple[np.ndarray, int]:
    h, w = m.shape
    if not m.any():
        return np.zeros((h, w), np.int32), 0
    ids = torch.arange(1, h * w + 1, dtype=torch.float64).reshape(h, w) * m
    flat_mask = m.flatten()
    while True:
        grown = F.max_pool2d(ids[None, None], 3, stride=1, padding=1)[0, 0] * m
        # pointer jumping: every pixel takes the label its label's pixel holds now
        lab = grown.flatten().long()
        jumped = grown.flatten().clone()
        sel = flat_mask & (lab > 0)
        jumped[sel] = torch.maximum(grown.flatten()[sel], grown.flatten()[lab[sel] - 1])
        jumped = jumped.reshape(h, w)
        if torch.equal(jumped, ids):
            break
        ids = jumped
    comp = ids[m].long()  # one id per component, in row-major pixel order
    first: dict[int, int] = {}
    for c in comp.tolist():
        first.setdefault(c, len(first) + 1)
    labels = torch.zeros(h, w, dtype=torch.int32)
    labels[m] = torch.tensor([first[c] for c in comp.tolist()], dtype=torch.int32)
    return labels.numpy(), len(first)


def uncertain_regions(
    uncertainty: Any, level: float = 0.5, top: int = 5, min_area: int | None = None, quantile: float = 0.9
) -> list[Region]:
    """The ``top`` connected regions of the most uncertain pixels, most worth a look first.

    A pixel belongs to a region when its uncertainty is at least ``level`` and at least the image's
    ``quantile`` of the map (the most uncertain 10% by default): on an image the model is unsure of
    everywhere, the regions still point at the worst of it (the image score says how unsure overall).

    Args:
        uncertainty: ``(H, W)`` map in [0, 1] (an image's own size).
        level: Smallest uncertainty of a region's pixels.
        top: How many regions to return at most.
        min_area: Smallest region kept, in pixels (default: 0.05% of the image, at least 4).
        quantile: The image-relative floor, in [0, 1] (0: ``level`` alone).

    Returns:
        Regions sorted by ``score`` (descending), ranks 1..n.
    """
    u = np.asarray(uncertainty.detach().cpu() if isinstance(uncertainty, torch.Tensor) else uncertainty, np.float64)
    if u.ndim != 2:
        raise ValueError(f"uncertainty must be an (H, W) map, got shape {u.shape}")
    if not 0 < level <= 1:
        raise ValueError(f"level must be in (0, 1], got {level}")
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    if not 0 <= quantile <= 1:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    floor = max(4, round(0.0005 * u.size)) if min_area is None else int(min_area)
    cut = max(float(level), float(np.quantile(u, quantile))) if quantile > 0 else float(level)
    labels, n = connected_components(u >= cut)
    if n == 0:
        return []
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n + 1)[1:]
    total = np.bincount(flat, weights=u.ravel(), minlength=n + 1)[1:]
    score = total  # area * mean uncertainty = the sum of the uncertainty inside
    order = [i for i in np.argsort(-score, kind="stable") if area[i] >= floor][:top]
    out = []
    for rank, i in enumerate(order, 1):
        region = labels == i + 1
        rows, cols = np.nonzero(region)
        out.append(
            Region(
                rank=rank,
                area=int(area[i]),
                mean_uncertainty=float(total[i] / area[i]),
                score=float(score[i]),
                bbox=(int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1),
                centroid=(float(rows.mean()), float(cols.mean())),
                mask=region,
            )
        )
    return out


def region_outlines(regions: list[Region], shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` int label map of the regions' outlines (value = rank), 0 elsewhere (for drawing)."""
    out = np.zeros(shape, np.int32)
    for r in reversed(regions):
        m = torch.as_tensor(r.mask).float()[None, None]
        eroded = -F.max_pool2d(-F.pad(m, (1, 1, 1, 1)), 3, stride=1)  # outside the image counts as outside
        out[r.mask & (eroded[0, 0].numpy() < 0.5)] = r.rank
    return out
