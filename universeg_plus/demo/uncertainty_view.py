"""The demo's uncertainty panel: the uncertainty heat map with the regions most likely wrong outlined."""

from __future__ import annotations

import numpy as np

from ..io.heatmaps import draw_outlines, heat_map
from ..predictor import Prediction
from ..uncertainty import region_outlines

__all__ = ["regions_markdown", "uncertainty_image"]


def uncertainty_image(pred: Prediction) -> np.ndarray | None:
    """``(H, W, 3)`` uint8: the heat map of ``pred.uncertainty`` with its regions outlined in cyan.

    ``None`` when the prediction has no uncertainty (``samples=1``).
    """
    if pred.uncertainty is None or pred.uncertainty.ndim != 2:
        return None
    outlines = region_outlines(list(pred.regions), pred.uncertainty.shape)
    return draw_outlines(heat_map(pred.uncertainty), outlines)


def regions_markdown(pred: Prediction, samples: int) -> str:
    """One summary line: the image score and where to look first."""
    if pred.uncertainty is None:
        return ""
    score = float(np.max(pred.uncertainty_score))
    where = "; ".join(
        f"#{r.rank} rows {r.bbox[0]}-{r.bbox[2]}, cols {r.bbox[1]}-{r.bbox[3]} ({r.area} px, "
        f"uncertainty {r.mean_uncertainty:.2f})"
        for r in pred.regions[:3]
    )
    return (
        f"**Uncertainty** ({samples} samples): expected 1 - Dice {score:.3f}; "
        + (f"look first at {where}" if where else "no region of high uncertainty")
    )
