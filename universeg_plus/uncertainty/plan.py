"""The sampling plan: which support subset and which paired augmentation each of K samples uses.

A sample is one forward pass of the in-context model over a *view* of the problem: a subset of the
support set, and one augmentation applied to the target and to every support example together
(geometry to images and labels alike, intensity to images only), then undone on the output. The
spread of the K outputs is the predictive spread the uncertainty is measured from (the
training-free Tyche-IS recipe, Rakic et al., CVPR 2024).

Geometry is exact and invertible on the model's square input grid (flips, quarter turns), so every
sample's probabilities land back on the target's pixels without interpolation. The plan is drawn
apart from applying it (MONAI-style), from one seeded generator: same arguments, same plan.

::

    plan = draw_plan(n_support=16, samples=8, seed=0)
    plan[0]                  # SampleSpec(indices=(0..15), identity): the plain prediction
    plan[3].indices          # 12 of the 16 examples
    x_aug = plan[3].augment_images(x)   # (..., H, W) in [0, 1]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["SampleSpec", "draw_plan"]


@dataclass(frozen=True)
class SampleSpec:
    """One sample's view: a support subset and a paired augmentation.

    Attributes:
        indices: Support examples used (indices into the support set, sorted).
        flip: Mirror the last axis (left-right) before the quarter turns.
        turns: Quarter turns (0-3) counter-clockwise in the (H, W) plane (square inputs only).
        gamma: Intensity gamma ``x ** gamma`` (1: none).
        contrast: Contrast factor around 0.5 (1: none).
        brightness: Added offset (0: none); intensities are clipped to [0, 1] afterwards.
        level: Probability level this sample's mask is cut at (``None``: the prediction threshold).
            With levels spread over (0, 1), a pixel is foreground in a fraction of the samples
            equal to its probability (masks drawn with one shared uniform variable per sample:
            tight to generous variants of the same view). The Predictor cuts the model's own
            probabilities: on the validation tasks that gave better candidates (best and mean of
            8) than cutting calibrated ones.
    """

    indices: tuple[int, ...]
    flip: bool = False
    turns: int = 0
    gamma: float = 1.0
    contrast: float = 1.0
    brightness: float = 0.0
    level: float | None = None

    @property
    def plain(self) -> bool:
        """Whether this view changes neither geometry nor intensity (the level aside)."""
        return not self.flip and self.turns == 0 and self.gamma == 1.0 and self.contrast == 1.0 and self.brightness == 0.0

    def augment_images(self, x: torch.Tensor) -> torch.Tensor:
        """Intensity then geometry on images ``(..., H, W)`` in [0, 1] (same shape, in [0, 1])."""
        if self.gamma != 1.0 or self.contrast != 1.0 or self.brightness != 0.0:
            x = x.clamp(0.0, 1.0) ** self.gamma
            x = ((x - 0.5) * self.contrast + 0.5 + self.brightness).clamp(0.0, 1.0)
        return self.augment_labels(x)

    def augment_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Geometry only, on labels or probabilities ``(..., H, W)``."""
        if self.flip:
            y = y.flip(-1)
        if self.turns:
            y = torch.rot90(y, self.turns, dims=(-2, -1))
        return y

    def invert(self, p: torch.Tensor) -> torch.Tensor:
        """Undo the geometry on an output ``(..., H, W)`` (exact: flips and quarter turns)."""
        if self.turns:
            p = torch.rot90(p, -self.turns, dims=(-2, -1))
        if self.flip:
            p = p.flip(-1)
        return p


def _count(value: object, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    v = int(value)
    if v < low or (high is not None and v > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{name} must be {bound}, got {v}")
    return v


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return float(low + (high - low) * torch.rand((), generator=g, dtype=torch.float64))


def draw_plan(
    n_support: int,
    samples: int,
    subset_size: int | None = None,
    *,
    geometry: bool = True,
    intensity: bool = True,
    square: bool = True,
    first_plain: bool = True,
    levels: bool = True,
    max_gamma: float = 1.5,
    max_contrast: float = 1.25,
    max_brightness: float = 0.1,
    seed: int = 0,
) -> list[SampleSpec]:
    """Draw K sample views of a support set of ``n_support`` examples.

    Args:
        n_support: Size of the support set (>= 1).
        samples: K, the number of views (>= 1).
        subset_size: Examples per view (default ``ceil(3/4 * n_support)``, all of them for 1 example).
        geometry: Draw a flip and quarter turns per view.
        intensity: Draw gamma, contrast and brightness per view (the same for target and support).
        square: The model grid is square (quarter turns allowed); otherwise only flips.
        first_plain: View 0 is the plain prediction (the whole support set, no augmentation, the
            threshold), so the K samples always include what ``samples=1`` gives.
        levels: Cut the other samples' masks at stratified probability levels ``(j + 1/2) / n``
            (``n`` samples, shuffled) instead of the threshold (see :class:`SampleSpec`).
        max_gamma: Gamma drawn log-uniformly in ``[1/max_gamma, max_gamma]``.
        max_contrast: Contrast drawn log-uniformly in ``[1/max_contrast, max_contrast]``.
        max_brightness: Brightness offset drawn uniformly in ``[-max_brightness, max_brightness]``.
        seed: Seed of the draw (same arguments and seed, same plan).

    Returns:
        ``samples`` :class:`SampleSpec` s.

    Raises:
        TypeError / ValueError: counts that are not integers in range, ranges below 1 (or negative).
    """
    n = _count(n_support, "n_support", 1)
    k = _count(samples, "samples", 1)
    size = max(1, math.ceil(0.75 * n)) if subset_size is None else _count(subset_size, "subset_size", 1, n)
    for name, v in (("max_gamma", max_gamma), ("max_contrast", max_contrast)):
        if not float(v) >= 1.0:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if not float(max_brightness) >= 0.0:
        raise ValueError(f"max_brightness must be >= 0, got {max_brightness}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    g = torch.Generator().manual_seed(int(seed) % (2**63))
    n_free = k - 1 if first_plain else k
    order = torch.randperm(max(1, n_free), generator=g).tolist()
    cuts = [(j + 0.5) / n_free for j in order] if levels and n_free else [None] * n_free
    plan: list[SampleSpec] = []
    for i in range(k):
        if i == 0 and first_plain:
            plan.append(SampleSpec(tuple(range(n))))
            continue
        idx = tuple(sorted(torch.randperm(n, generator=g)[:size].tolist()))
        flip, turns, gamma, contrast, bright = False, 0, 1.0, 1.0, 0.0
        if geometry:
            flip = bool(torch.randint(2, (), generator=g))
            turns = int(torch.randint(4, (), generator=g)) if square else 2 * int(torch.randint(2, (), generator=g))
            if not square and turns:  # a half turn is a flip of both axes: keep it exact on any grid
                turns = 2
        if intensity:
            lg, lc = math.log(float(max_gamma)), math.log(float(max_contrast))
            gamma = math.exp(_uniform(g, -lg, lg))
            contrast = math.exp(_uniform(g, -lc, lc))
            bright = _uniform(g, -float(max_brightness), float(max_brightness))
        plan.append(SampleSpec(idx, flip, turns, gamma, contrast, bright, cuts[len(plan) - (k - n_free)]))
    return plan


def plan_summary(plan: Sequence[SampleSpec]) -> str:
    """One line saying what the plan varies (for logs and reports)."""
    sizes = sorted({len(s.indices) for s in plan})
    geo = sum(1 for s in plan if s.flip or s.turns)
    inten = sum(1 for s in plan if s.gamma != 1.0 or s.contrast != 1.0 or s.brightness != 0.0)
    return f"{len(plan)} samples: subsets of {'/'.join(map(str, sizes))}, {geo} with geometry, {inten} with intensity"
