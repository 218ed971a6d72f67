"""What an annotator does to a proposed mask, and what it cost them.

Masks here are integer label maps ``(H, W)`` (0 = background, 1, 2, ... = labels) at the item's
own size; probability maps are float32 in [0, 1], ``(H, W)`` for one label or ``(C, H, W)`` for
``C`` labels (as :class:`universeg_plus.predictor.Prediction` gives them).

The edit cost of an accepted mask is the number of pixels where the proposal and the accepted mask
differ, divided by the accepted mask's foreground pixels: drawing from scratch costs 1.0. An
annotator who finds the proposal worse than nothing clears it and draws, so the cost is capped at
1.0 (:func:`edit_cost`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["brush", "clear", "click", "edit_cost", "edit_pixels", "entropy_score", "label_dice"]

#: A positive click on a pixel the model gave less than this probability adds a small disc instead of a region.
MIN_CLICK_PROBABILITY = 0.05


def _check_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a 2D label map (H, W), got shape {m.shape}")
    if m.dtype.kind == "b":
        return m.astype(np.uint8)
    if m.dtype.kind == "f":
        if not np.isfinite(m).all() or not np.array_equal(m, np.round(m)) or m.min() < 0:
            raise ValueError(f"{name} must hold non-negative integer labels")
        return m.astype(np.int64)
    if m.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer label map, got dtype {m.dtype}")
    if m.size and m.min() < 0:
        raise ValueError(f"{name} must hold non-negative integer labels, found {int(m.min())}")
    return m


def _same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: the proposal is {a.shape} but the accepted mask is {b.shape}")


def edit_pixels(proposal: np.ndarray, accepted: np.ndarray) -> int:
    """Pixels whose label differs between ``proposal`` and ``accepted`` (two ``(H, W)`` label maps)."""
    p, a = _check_mask(proposal, "proposal"), _check_mask(accepted, "accepted mask")
    _same_shape(p, a, "edit_pixels")
    return int(np.count_nonzero(p != a))


def edit_cost(proposal: np.ndarray, accepted: np.ndarray) -> float:
    """Edited pixels over the accepted mask's foreground pixels, capped at 1.0 (clear and draw).

    An empty accepted mask costs 0.0 when the proposal is empty too, else 1.0 (clearing is one action).
    """
    a = _check_mask(accepted, "accepted mask")
    changed = edit_pixels(proposal, a)
    if changed == 0:
        return 0.0
    fg = int(np.count_nonzero(a))
    return 1.0 if fg == 0 else min(1.0, changed / fg)


def label_dice(proposal: np.ndarray, truth: np.ndarray) -> float:
    """Mean Dice over the labels present in ``truth`` or ``proposal`` (1.0 when both are empty)."""
    p, t = _check_mask(proposal, "proposal"), _check_mask(truth, "truth")
    _same_shape(p, t, "label_dice")
    labels = sorted((set(np.unique(p).tolist()) | set(np.unique(t).tolist())) - {0})
    if not labels:
        return 1.0
    scores = []
    for c in labels:
        pc, tc = p == c, t == c
        scores.append(2.0 * np.count_nonzero(pc & tc) / (np.count_nonzero(pc) + np.count_nonzero(tc)))
    return float(np.mean(scores))


def _component(region: np.ndarray, y: int, x: int) -> np.ndarray:
    """The 4-connected component of boolean ``region`` holding ``(y, x)`` (empty if it is False there)."""
    out = np.zeros_like(region, dtype=bool)
    if not region[y, x]:
        return out
    h, w = region.shape
    stack = [(y, x)]
    out[y, x] = True
    while stack:
        cy, cx = stack.pop()
        for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
            if 0 <= ny < h and 0 <= nx < w and region[ny, nx] and not out[ny, nx]:
                out[ny, nx] = True
                stack.append((ny, nx))
    return out


def _disc(shape: Sequence[int], y: int, x: int, radius: float) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - y) ** 2 + (xx - x) ** 2 <= radius**2


def _point(mask: np.ndarray, y: int, x: int) -> tuple[int, int]:
    h, w = mask.shape
    if not (0 <= y < h and 0 <= x < w):
        raise ValueError(f"click at (y={y}, x={x}) is outside the {h}x{w} image")
    return int(y), int(x)


def click(
    mask: np.ndarray,
    y: int,
    x: int,
    positive: bool = True,
    probabilities: np.ndarray | None = None,
    label: int = 1,
    classes: Sequence[int] = (1,),
) -> np.ndarray:
    """One click on ``mask`` (returns a new label map, same shape and dtype).

    A positive click adds, as ``label``, the region of the probability map around the click: the
    connected pixels whose probability for ``label`` is at least half the clicked pixel's (a small
    disc, 3% of the image's shorter side, where the model saw nothing or no map is given). A negative
    click removes the connected region of the clicked pixel's label.

    Args:
        mask: ``(H, W)`` label map.
        y, x: The clicked pixel.
        positive: Add (``True``) or remove (``False``).
        probabilities: ``(H, W)`` or ``(C, H, W)`` float in [0, 1] (optional, for positive clicks).
        label: The label a positive click adds.
        classes: The labels of the class axis of ``probabilities``.
    """
    m = _check_mask(mask)
    y, x = _point(m, y, x)
    out = m.copy()
    if not positive:
        if m[y, x] != 0:
            out[_component(m == m[y, x], y, x)] = 0
        return out
    if isinstance(label, bool) or int(label) != label or label < 1:
        raise ValueError(f"label must be a positive integer, got {label!r}")
    region = None
    if probabilities is not None:
        probs = np.asarray(probabilities, dtype=np.float32)
        probs = probs[None] if probs.ndim == 2 else probs
        if probs.shape[-2:] != m.shape:
            raise ValueError(f"probabilities {probs.shape} do not match the mask {m.shape}")
        if int(label) in list(classes):
            p = probs[list(classes).index(int(label))]
            if p[y, x] >= MIN_CLICK_PROBABILITY:
                region = _component(p >= p[y, x] / 2, y, x)
    if region is None:
        region = _disc(m.shape, y, x, max(1.0, 0.03 * min(m.shape)))
    out[region] = int(label)
    return out


def brush(mask: np.ndarray, points: Sequence[tuple[int, int]], radius: float, label: int = 1) -> np.ndarray:
    """Paint discs of ``radius`` pixels at ``points`` ``[(y, x), ...]`` with ``label`` (0 erases)."""
    m = _check_mask(mask)
    if radius <= 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    out = m.copy()
    for y, x in points:
        y, x = _point(m, y, x)
        out[_disc(m.shape, y, x, radius)] = int(label)
    return out


def clear(mask: np.ndarray) -> np.ndarray:
    """An empty label map like ``mask`` (the proposal was worse than nothing: draw from scratch)."""
    return np.zeros_like(_check_mask(mask))


def entropy_score(probabilities: np.ndarray) -> float:
    """Mean binary entropy (bits, in [0, 1]) of a ``(H, W)`` or ``(C, H, W)`` probability map.

    The "most uncertain first" order ranks items by it. It is the seam where a sampled uncertainty
    (several stochastic predictions) can replace the single map's entropy.
    """
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-6, 1 - 1e-6)
    h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return float(h.mean())
