"""A per-task colour-to-grey projection learned from the support set, applied alike to support and targets.

The network takes one channel; :mod:`universeg_plus.io.inputs` turns RGB into luma, which can erase
exactly what tells a structure apart (a red lesion on skin of the same brightness). Here the support
masks say which colour is foreground: the Fisher (LDA) direction between foreground and background
pixels separates them best linearly::

    proj = fit_projection(rgb_images, masks)                  # Fisher direction of this support set
    support = SupportSet.from_arrays([proj(im) for im in rgb_images], masks)
    predictor.set_support(support).predict(proj(rgb_target))

:func:`choose_projection` picks among luma, the three channels and the Fisher direction by
leave-one-out Dice of the in-context model on the support set (the Fisher direction refitted
without the held-out example), so a colour task that luma serves well keeps luma.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

__all__ = ["LUMA", "ColourProjection", "choose_projection", "fit_projection"]

#: ITU-R 601-2 luma weights (what :mod:`universeg_plus.io.inputs` and PIL's ``convert("L")`` use).
LUMA = (0.299, 0.587, 0.114)


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

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        x = _rgb01(rgb)
        y = (x @ np.asarray(self.weights, np.float64) - self.low) / max(self.high - self.low, 1e-12)
        return np.clip(y, 0.0, 1.0).astype(np.float32)


def _rgb01(rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {a.shape}")
    a = a.astype(np.float64)
    return a / 255.0 if np.issubdtype(np.asarray(rgb).dtype, np.integer) or a.max() > 1.0 else a


def fit_projection(
    images: Sequence[np.ndarray], masks: Sequence[np.ndarray], max_pixels: int = 20000, seed: int = 0
) -> ColourProjection:
    """The Fisher direction between foreground and background pixels of the support set.

    Args:
        images: RGB ``(H, W, 3)`` uint8 (0-255) or float in [0, 1].
        masks: ``(H, W)``, non-zero = foreground.
        max_pixels: Pixels sampled per class (a seeded draw).

    Raises:
        ValueError: no image, mismatched sizes, or no foreground/background pixel at all.
    """
    if not images or len(images) != len(masks):
        raise ValueError(f"need as many masks as images (at least one), got {len(images)} and {len(masks)}")
    fg, bg = [], []
    for im, m in zip(images, masks):
        x = _rgb01(im)
        m = np.asarray(m) > 0
        if m.shape != x.shape[:2]:
            raise ValueError(f"mask {m.shape} does not match image {x.shape[:2]}")
        fg.append(x[m])
        bg.append(x[~m])
    f, b = np.concatenate(fg), np.concatenate(bg)
    if not len(f) or not len(b):
        raise ValueError("the support masks need foreground and background pixels to learn a colour projection")
    rng = np.random.default_rng(seed)
    f = f[rng.choice(len(f), min(len(f), max_pixels), replace=False)]
    b = b[rng.choice(len(b), min(len(b), max_pixels), replace=False)]
    within = np.cov(f.T) + np.cov(b.T) + 1e-6 * np.eye(3)
    w = np.linalg.solve(within, f.mean(0) - b.mean(0))  # foreground projects higher
    w = w / (np.abs(w).sum() or 1.0)
    proj = np.concatenate([f, b]) @ w
    low, high = np.percentile(proj, [1, 99])
    return ColourProjection("fisher", tuple(float(v) for v in w), float(low), float(high))


def _fixed() -> list[ColourProjection]:
    return [ColourProjection("luma", LUMA), ColourProjection("red", (1.0, 0.0, 0.0)),
            ColourProjection("green", (0.0, 1.0, 0.0)), ColourProjection("blue", (0.0, 0.0, 1.0))]


def choose_projection(
    model: nn.Module, images: Sequence[np.ndarray], masks: Sequence[np.ndarray], size: tuple[int, int] | None = None,
    seed: int = 0,
) -> tuple[ColourProjection, dict[str, float]]:
    """The projection with the best leave-one-out Dice of ``model`` on the support set.

    Each support example in turn is the target, the others its support; the Fisher direction is
    refitted without it. Needs at least 2 examples (with one, the Fisher direction is returned).

    Returns:
        The chosen projection (Fisher refitted on the whole set when it wins) and the mean
        leave-one-out Dice per projection name.
    """
    from .adapt import in_context_probabilities
    from .metrics import dice
    from .support import SupportSet

    if len(images) < 2:
        return fit_projection(images, masks, seed=seed), {}
    hw = tuple(size or model.config.input_size)
    binary = [(np.asarray(m) > 0).astype(np.uint8) for m in masks]
    scores: dict[str, list[float]] = {}
    for i in range(len(images)):
        rest = [j for j in range(len(images)) if j != i]
        cands = [*_fixed(), fit_projection([images[j] for j in rest], [binary[j] for j in rest], seed=seed)]
        for proj in cands:
            sup = SupportSet.from_arrays([proj(images[j]) for j in rest], [binary[j] for j in rest], hw)
            tgt = SupportSet.from_arrays([proj(images[i])], [binary[i]], hw)
            p = in_context_probabilities(model, tgt.images, sup.images, sup.masks)[0, 0] > 0.5
            scores.setdefault(proj.name, []).append(float(dice(p, tgt.masks[0, 0] > 0.5)))
    means = {k: float(np.mean(v)) for k, v in scores.items()}
    best = max(means, key=lambda k: (means[k], k == "luma"))  # ties keep luma
    if best == "fisher":
        return fit_projection(images, binary, seed=seed), means
    chosen = next(p for p in _fixed() if p.name == best)
    return chosen, means
