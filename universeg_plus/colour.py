"""A per-task colour-to-grey projection learned from the support set, applied alike to support and targets.

The network takes one channel; :mod:`universeg_plus.io.inputs` turns RGB into luma, which can erase
exactly what tells a structure apart (a red lesion on skin of the same brightness). Here the support
masks say which colour is foreground: the Fisher (LDA) direction between foreground and background
pixels separates them best linearly. The user's road is the Predictor, which fits the projection
on the support set and applies it to every target::

    predictor.set_support(rgb_images, masks, colour="auto")   # or "fisher"; "luma" (default) = as before
    predictor.colour, predictor.colour_scores                 # the projection used, leave-one-out Dice
    pred = predictor.predict(rgb_target)                      # pred.colour names it too

By hand: ``proj = fit_projection(rgb_images, masks)`` then ``proj(rgb)`` -> ``(H, W)`` in [0, 1].
:func:`choose_projection` picks among luma, the three channels and the Fisher direction by
leave-one-out Dice of the in-context model on the support set (the Fisher direction refitted
without the held-out example), so a colour task that luma serves well keeps luma.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from .io.colour_projection import ColourProjection, rgb01
from .io.image_rules import LUMA  # ITU-R 601-2 luma weights (the input rules' and PIL's convert("L"))

__all__ = ["COLOUR_MODES", "LUMA", "ColourProjection", "check_colour", "choose_projection", "fit_colour",
           "fit_projection"]

#: What ``colour=`` may name: ``"luma"`` (the input rules' grey, the default), ``"fisher"`` (the support
#: set's Fisher direction) or ``"auto"`` (:func:`choose_projection`); a :class:`ColourProjection` also works.
COLOUR_MODES = ("luma", "fisher", "auto")


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
        x = rgb01(im)
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
    refitted without it (luma where the others hold no foreground or no background pixel: nothing
    to fit). Needs at least 2 examples (with one, the Fisher direction is returned).

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
        rest_masks = [binary[j] for j in rest]
        fits = any(m.any() for m in rest_masks) and not all(m.all() for m in rest_masks)
        fisher = fit_projection([images[j] for j in rest], rest_masks, seed=seed) if fits else _fixed()[0]
        for name, proj in [*((p.name, p) for p in _fixed()), ("fisher", fisher)]:
            sup = SupportSet.from_arrays([proj(images[j]) for j in rest], rest_masks, hw)
            tgt = SupportSet.from_arrays([proj(images[i])], [binary[i]], hw)
            p = in_context_probabilities(model, tgt.images, sup.images, sup.masks)[0, 0] > 0.5
            scores.setdefault(name, []).append(float(dice(p, tgt.masks[0, 0] > 0.5)))
    means = {k: float(np.mean(v)) for k, v in scores.items()}
    best = max(means, key=lambda k: (means[k], k == "luma"))  # ties keep luma
    if best == "fisher":
        return fit_projection(images, binary, seed=seed), means
    chosen = next(p for p in _fixed() if p.name == best)
    return chosen, means


def check_colour(colour: Any) -> str | ColourProjection:
    """``colour=`` checked: one of :data:`COLOUR_MODES` or a :class:`ColourProjection` (the plain luma
    projection, e.g. ``predictor.colour`` of a grey set, is ``"luma"``: the input rules' own).

    Raises:
        TypeError: neither a string nor a ColourProjection. ValueError: an unknown name.
    """
    if isinstance(colour, ColourProjection):
        return "luma" if colour.is_luma else colour
    if not isinstance(colour, str):
        raise TypeError(
            f"colour must be one of {list(COLOUR_MODES)} or a ColourProjection, got {type(colour).__name__}"
        )
    if colour not in COLOUR_MODES:
        raise ValueError(f"colour must be one of {list(COLOUR_MODES)} or a ColourProjection, got {colour!r}")
    return colour


def fit_colour(
    colour: str | ColourProjection, model: nn.Module, images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
    size: tuple[int, int] | None = None, names: Sequence[str] | None = None,
) -> tuple[ColourProjection | None, dict[str, float]]:
    """The projection ``colour`` asks for on this support set (checked by :func:`check_colour`).

    Args:
        colour: ``"luma"``, ``"fisher"``, ``"auto"`` or a :class:`ColourProjection`.
        model: The in-context model ``"auto"`` scores with.
        images: ``(H, W, 3)`` RGB (uint8 0-255 or float in [0, 1]) or ``(H, W)`` grey, as read
            (:func:`universeg_plus.io.inputs.image_array` with ``keep_rgb=True``).
        masks: ``(H, W)`` label maps (non-zero = foreground), one per image.
        size: The model input size ``"auto"`` scores at.
        names: Example names for error messages.

    Returns:
        ``(projection, leave-one-out Dice per candidate)``: ``None`` for the input rules' own luma (a
        ``"luma"`` request, ``"auto"`` choosing luma, or ``"auto"`` on a grey support set, whose grey
        stays exactly as it is);
        the scores are empty unless ``"auto"`` scored at least two colour examples.

    Raises:
        ValueError: ``"fisher"`` or a projection with a grey example (named), or a mix of grey and
            colour examples for ``"auto"``.
    """
    colour = check_colour(colour)
    if isinstance(colour, str) and colour == "luma":
        return None, {}
    grey = [k for k, im in enumerate(images) if np.ndim(im) != 3]
    if len(grey) == len(images) and colour == "auto":
        return None, {}  # nothing to choose from: the grey images as they are
    if grey:
        k = grey[0]
        which = f"support image {names[k] if names else '#' + str(k)}"
        raise ValueError(
            f"colour={colour if isinstance(colour, str) else colour.name!r} projects RGB support images, but "
            f"{which} is grayscale (shape {tuple(np.shape(images[k]))}; {len(grey)} of {len(images)} are): "
            "give every example in colour (H, W, 3), or colour='luma'"
        )
    if isinstance(colour, ColourProjection):
        return colour, {}
    if colour == "fisher":
        return fit_projection(images, masks), {}
    chosen, scores = choose_projection(model, images, masks, size)
    return (None if chosen.name == "luma" else chosen), scores  # luma: the input rules' own, bit for bit
