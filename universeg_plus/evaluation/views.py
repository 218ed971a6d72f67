"""Choosing how to cover a task's images (whole image, tiles, or both fused) from its support set alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..inferers import Resize, Tiles
from ..io.inputs import as_label_map
from ..predictor import Predictor
from ..windows import FUSION_RULES, View, check_positive_int, fuse

__all__ = ["View", "choose_view"]

_ENGINE_OPTIONS = ("device", "max_pairs", "support_chunk")


def choose_view(
    model: nn.Module | Any,
    images: Sequence[Any],
    masks: Sequence[Any],
    scales: Sequence[float] = (1.0,),
    fusions: Sequence[str] = FUSION_RULES,
    n_val: int = 4,
    threshold: float = 0.5,
    seed: int = 0,
    progress: bool = False,
    **tiles_kwargs: Any,
) -> tuple[View, dict[str, float]]:
    """Choose the view by leave-one-out Dice on the support set itself (no target labels).

    ``n_val`` support examples (a seeded draw) are segmented in turn from the other ``S - 1`` with
    every candidate view: the global view (:class:`~universeg_plus.inferers.Resize`), the tiled view
    at each of ``scales`` (:class:`~universeg_plus.inferers.Tiles`) and its fusion with the global
    view by each of ``fusions``. Any non-zero label is foreground. The view with the best mean Dice
    (probability > ``threshold``) wins; ties go to the earlier candidate in that order (global first:
    the cheapest). Costs ``n_val`` global predictions and ``n_val * len(scales)`` tiled ones.

    Args:
        model: A model (see :class:`~universeg_plus.predictor.Predictor`).
        images: ``S >= 2`` native-size support images.
        masks: Their masks (non-zero = foreground).
        scales: Tiled scales to consider.
        fusions: Fusion rules to consider (``()``: tiled views alone).
        n_val: Held-out examples (capped at ``S``).
        threshold: Foreground cut-off of the Dice.
        seed: Seeds the held-out draw and the window choice.
        progress: Show a tqdm bar.
        **tiles_kwargs: Other :class:`~universeg_plus.inferers.Tiles` options (``overlap``,
            ``windows_per_support``, ...) and the Predictor's ``device``, ``max_pairs``, ``support_chunk``.

    Returns:
        The chosen :class:`~universeg_plus.windows.View` and the mean Dice of every candidate, by view name.

    Raises:
        ValueError: fewer than 2 examples, bad scales, fusions or ``n_val``.
    """
    from tqdm.auto import tqdm

    images, masks = list(images), list(masks)
    if len(images) < 2 or len(images) != len(masks):
        raise ValueError(
            f"choose_view needs at least 2 support pairs (images and masks alike), got {len(images)} images "
            f"and {len(masks)} masks"
        )
    check_positive_int("n_val", n_val)
    if not scales:
        raise ValueError("scales must hold at least one scale")
    views = [View()]
    for s in scales:
        views += [View(float(s))] + [View(float(s), f) for f in fusions]
    engine = {k: tiles_kwargs.pop(k) for k in _ENGINE_OPTIONS if k in tiles_kwargs}
    tiles = {float(s): Tiles(scale=float(s), seed=seed, **tiles_kwargs) for s in scales}
    fg = [(as_label_map(m, f"support mask #{i}") != 0).astype(np.uint8) for i, m in enumerate(masks)]
    predictor = Predictor(model, **engine)
    held_out = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n_val].tolist()
    dices: dict[str, list[float]] = {v.name: [] for v in views}

    def dice(p: np.ndarray, ref: np.ndarray) -> float:
        return float(metrics.dice(torch.from_numpy(p > threshold), torch.from_numpy(ref != 0)))

    with tqdm(total=len(held_out) * len(scales), desc="choose view", disable=not progress, leave=False) as bar:
        for i in held_out:
            rest = [j for j in range(len(images)) if j != i]
            predictor.set_support([images[j] for j in rest], [fg[j] for j in rest])
            glob = predictor.predict(images[i], inferer=Resize()).probabilities
            dices["global"].append(dice(glob, fg[i]))
            for s in scales:
                tiled = predictor.predict(images[i], inferer=tiles[float(s)]).probabilities
                for v in views:
                    if v.scale == float(s):
                        p = tiled if v.fusion is None else fuse([glob, tiled], v.fusion)
                        dices[v.name].append(dice(p, fg[i]))
                bar.update()
    scores = {name: float(np.mean(d)) for name, d in dices.items()}
    best = max(views, key=lambda v: scores[v.name])  # max keeps the first of equal scores
    return best, scores
