"""The geometry of tiled inference at (near) native resolution, for small and thin structures.

The ordinary path (the :class:`~universeg_plus.inferers.Resize` inferer) resizes every image to the
model's input size (128x128), which erases vessels, membranes, nuclei and other structures a few
pixels wide. The :class:`~universeg_plus.inferers.Tiles` inferer instead:

1. resizes the target and every support example by ``scale`` (1.0 = native pixel size, 0.5 = half,
   2.0 = twice) with the image rule of :mod:`universeg_plus.io.inputs` (antialiased bilinear, then
   per-image min-max to [0, 1]; masks: indicator resized with the same filter, > 0.5);
2. cuts the target into overlapping windows of the model input size (``overlap`` = fraction of a
   window shared with its neighbour; the windows are spread evenly so the last one ends at the border):
   :func:`target_windows`;
3. takes up to ``windows_per_support`` windows from each support example at the same scale, a
   ``fg_fraction`` share of them containing foreground and the rest from the windows without
   (seeded; topped up from the other kind when one runs out): :func:`support_windows`;
4. segments every target window against that one set of support windows (the engine,
   :class:`universeg_plus.inference.Engine`);
5. blends the window probabilities with Gaussian weights (sigma = ``sigma`` x window size, centre
   weight 1) into a map at the scaled size, resized back (bilinear) to the target's native size:
   :func:`blend_windows`.

An image smaller than a window (after scaling) is padded with zeros (and empty mask) on its bottom
and right; the padding is cropped from the output.

``normalize="window"`` (default) min-max scales every window on its own (a constant window becomes
zeros), so each window spans [0, 1] as every training image did; ``"image"`` min-max scales the
whole resized image, as the ordinary path does. The default was chosen by measurement
(``docs/tiling.md``: equal on EM membranes and H&E nuclei, +0.10 Dice on fluorescence nuclei).

:func:`fuse` combines views (``"mean"`` or ``"max"`` of probabilities), e.g. the whole-image view
with the tiled one; :class:`View` names one such choice.

This module is geometry only (tensors in, tensors out); no model runs here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from .io.inputs import check_size, normalize_image, resize_indicators, standardize_image

__all__ = [
    "FUSION_RULES",
    "NORMALIZATIONS",
    "View",
    "WindowEpisodes",
    "balanced_corners",
    "blend_windows",
    "fuse",
    "gaussian_weights",
    "pad_to",
    "scaled_example",
    "scaled_size",
    "split_corners",
    "support_windows",
    "target_windows",
    "window_grid",
    "window_image",
    "window_starts",
]

Normalization = Literal["image", "window"]
FusionRule = Literal["mean", "max"]
NORMALIZATIONS: tuple[str, ...] = ("image", "window")
FUSION_RULES: tuple[str, ...] = ("mean", "max")
MAX_SCALE = 8.0


# ---------------------------------------------------------------------- argument checks
def check_scale(scale: float) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number in (0, {MAX_SCALE}], got {scale!r}")
    if not 0.0 < float(scale) <= MAX_SCALE:
        raise ValueError(
            f"scale must be in (0, {MAX_SCALE}] (1.0 = native pixel size, 0.5 = downsample by 2), got {scale}"
        )
    return float(scale)


def check_overlap(overlap: float) -> float:
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0.0 <= float(overlap) < 1.0:
        raise ValueError(f"overlap must be a fraction of the window in [0, 1), got {overlap!r}")
    return float(overlap)


def check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


# ---------------------------------------------------------------------- geometry
def scaled_size(size: Sequence[int], scale: float) -> tuple[int, int]:
    """``(H, W)`` multiplied by ``scale`` and rounded (at least 1 pixel per side)."""
    h, w = check_size(size)
    s = check_scale(scale)
    return max(1, round(h * s)), max(1, round(w * s))


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Start offsets of windows of ``window`` pixels covering ``length`` pixels with ``overlap``.

    The stride is at most ``round(window * (1 - overlap))`` (and at least 1); the starts are spread
    evenly from 0 to ``length - window``, so the first window starts at the first pixel and the last
    ends at the last. ``length <= window`` gives ``[0]`` (one window, padded).
    """
    overlap = check_overlap(overlap)
    if length < 1 or window < 1:
        raise ValueError(f"length and window must be >= 1, got {length} and {window}")
    if length <= window:
        return [0]
    stride = max(1, round(window * (1.0 - overlap)))
    n = math.ceil((length - window) / stride) + 1
    return [round(i * (length - window) / (n - 1)) for i in range(n)]


def window_grid(size: Sequence[int], window: Sequence[int], overlap: float) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of the windows covering an image of ``size`` (row-major order)."""
    h, w = check_size(size)
    wh, ww = check_size(window)
    return [(y, x) for y in window_starts(h, wh, overlap) for x in window_starts(w, ww, overlap)]


def gaussian_weights(window: Sequence[int], sigma: float = 0.125) -> torch.Tensor:
    """Blending weights ``(h, w)`` float32: a Gaussian of std ``sigma * side`` centred on the window.

    The centre weight is 1; weights are floored at 1e-3 so that every pixel of a window counts.
    """
    wh, ww = check_size(window)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not float(sigma) > 0:
        raise ValueError(f"sigma must be a positive fraction of the window size, got {sigma!r}")

    def axis(n: int) -> torch.Tensor:
        c = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        return torch.exp(-0.5 * (c / (sigma * n)) ** 2)

    g = axis(wh)[:, None] * axis(ww)[None, :]
    return (g / g.max()).clamp_(min=1e-3).float()


def blend_windows(
    windows: torch.Tensor, corners: Sequence[tuple[int, int]], size: Sequence[int], sigma: float = 0.125
) -> torch.Tensor:
    """Blend window maps into one image map with Gaussian weights.

    Args:
        windows: ``(N, h, w)`` float values (e.g. probabilities), one per corner.
        corners: ``N`` top-left corners ``(y, x)``; windows may reach past ``size`` (padding), that
            part is dropped.
        size: ``(H, W)`` of the output.
        sigma: See :func:`gaussian_weights`.

    Returns:
        ``(H, W)`` float32: per pixel, the weighted mean of the windows covering it.

    Raises:
        ValueError: count mismatch, or a pixel no window covers.
    """
    h, w = check_size(size)
    if windows.ndim != 3 or windows.shape[0] != len(corners):
        raise ValueError(
            f"windows must have shape (N, h, w) with N = {len(corners)} corners, got {tuple(windows.shape)}"
        )
    wh, ww = windows.shape[-2:]
    weight = gaussian_weights((wh, ww), sigma)
    canvas_h = max(h, max((y + wh for y, _ in corners), default=h))
    canvas_w = max(w, max((x + ww for _, x in corners), default=w))
    total = torch.zeros(canvas_h, canvas_w)
    norm = torch.zeros(canvas_h, canvas_w)
    for win, (y, x) in zip(windows.float().cpu(), corners):
        total[y : y + wh, x : x + ww] += win * weight
        norm[y : y + wh, x : x + ww] += weight
    total, norm = total[:h, :w], norm[:h, :w]
    if not bool((norm > 0).all()):
        raise ValueError("the windows do not cover the whole image")
    return total / norm


def fuse(maps: Sequence[np.ndarray | torch.Tensor], rule: FusionRule = "mean") -> np.ndarray:
    """Fuse probability maps of one image (e.g. the global and the tiled view).

    Args:
        maps: Two or more ``(H, W)`` maps in [0, 1] of the same shape.
        rule: ``"mean"`` (average) or ``"max"`` (pixelwise maximum).

    Returns:
        ``(H, W)`` float32 in [0, 1].
    """
    check_choice("fusion rule", rule, FUSION_RULES)
    arrays = [np.asarray(m.detach().cpu() if isinstance(m, torch.Tensor) else m, dtype=np.float32) for m in maps]
    if len(arrays) < 2:
        raise ValueError(f"fuse needs at least 2 maps, got {len(arrays)}")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 2:
        raise ValueError(f"maps must all be (H, W) of one shape, got {[a.shape for a in arrays]}")
    stack = np.stack(arrays)
    out = stack.mean(0) if rule == "mean" else stack.max(0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------- windows
def pad_to(t: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Zero-pad ``(..., H, W)`` on the bottom/right up to at least ``size``."""
    ph, pw = max(0, size[0] - t.shape[-2]), max(0, size[1] - t.shape[-1])
    return F.pad(t, (0, pw, 0, ph)) if ph or pw else t


def window_image(win: torch.Tensor, normalize: Normalization) -> torch.Tensor:
    """A window as the network sees it: min-max scaled on its own (``"window"``) or as cut (``"image"``)."""
    return normalize_image(win) if normalize == "window" else win


def split_corners(
    fg: torch.Tensor, window: Sequence[int], overlap: float
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The corners of the ``overlap`` grid of windows over ``fg`` ``(H, W)`` bool: ``(with foreground, without)``."""
    wh, ww = window
    candidates = window_grid(fg.shape, window, overlap)
    has_fg = [bool(fg[y : y + wh, x : x + ww].any()) for y, x in candidates]
    return [c for c, f in zip(candidates, has_fg) if f], [c for c, f in zip(candidates, has_fg) if not f]


def balanced_corners(
    fg: torch.Tensor, window: Sequence[int], k: int, fg_fraction: float, gen: torch.Generator
) -> list[tuple[int, int]]:
    """Up to ``k`` windows of one support example: ``fg_fraction`` with foreground, the rest without.

    Candidates lie on a 3/4-overlap grid; each kind is shuffled by ``gen`` and one kind tops up
    the other when it runs out.
    """
    with_fg, without = split_corners(fg, window, 0.75)
    with_fg = [with_fg[i] for i in torch.randperm(len(with_fg), generator=gen).tolist()]
    without = [without[i] for i in torch.randperm(len(without), generator=gen).tolist()]
    k = min(k, len(with_fg) + len(without))
    n_fg = min(len(with_fg), round(k * fg_fraction))
    n_bg = min(len(without), k - n_fg)
    n_fg = min(len(with_fg), k - n_bg)  # top up from the windows with foreground
    return with_fg[:n_fg] + without[:n_bg]


def scaled_example(
    img: torch.Tensor, fg: torch.Tensor, window: Sequence[int], scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One native-size example as the tiled mode sees it (step 1): image ``(H', W')`` float32 in [0, 1]
    and foreground ``(H', W')`` bool at ``scale`` x its size, zero-padded to at least ``window``."""
    size = scaled_size(img.shape, scale)
    return pad_to(standardize_image(img, size), window), pad_to(resize_indicators(fg[None], size)[0], window)


def support_windows(
    images: Sequence[torch.Tensor],
    foregrounds: Sequence[torch.Tensor],
    window: Sequence[int],
    scale: float = 1.0,
    windows_per_support: int = 4,
    fg_fraction: float = 0.5,
    normalize: Normalization = "window",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut the support windows from native-size examples (steps 1 and 3 of the module docstring).

    Args:
        images: ``S`` checked images ``(H, W)`` float32 (any sizes).
        foregrounds: Their foreground indicators ``(H, W)`` bool, same sizes.
        window: The model input size ``(h, w)``.
        scale, windows_per_support, fg_fraction, normalize, seed: See :class:`universeg_plus.inferers.Tiles`.

    Returns:
        Images ``(K, 1, h, w)`` float32 in [0, 1] and masks ``(K, 1, h, w)`` float32 in {0, 1}.
    """
    gen = torch.Generator().manual_seed(seed)
    wh, ww = window
    win_imgs, win_masks = [], []
    for img, fg in zip(images, foregrounds):
        s_img, s_fg = scaled_example(img, fg, window, scale)
        for y, x0 in balanced_corners(s_fg, window, windows_per_support, fg_fraction, gen):
            win_imgs.append(window_image(s_img[y : y + wh, x0 : x0 + ww], normalize))
            win_masks.append(s_fg[y : y + wh, x0 : x0 + ww])
    return torch.stack(win_imgs)[:, None], torch.stack(win_masks)[:, None].float()


def target_windows(
    img: torch.Tensor, window: Sequence[int], scale: float, overlap: float, normalize: Normalization
) -> tuple[torch.Tensor, list[tuple[int, int]], tuple[int, int]]:
    """Cut a target ``(H, W)`` float32 into windows (step 2): ``(windows (N, 1, h, w), corners, scaled size)``."""
    size = scaled_size(img.shape, scale)
    x = pad_to(standardize_image(img, size), window)
    corners = window_grid(x.shape, window, overlap)
    wh, ww = window
    wins = torch.stack([window_image(x[y : y + wh, x0 : x0 + ww], normalize) for y, x0 in corners])[:, None]
    return wins, corners, size


#: Overlap of the grid adaptation episodes draw their window positions from (denser than the
#: support windows' 3/4 grid: more distinct episodes from few examples).
EPISODE_OVERLAP = 0.875


class WindowEpisodes:
    """Adaptation episodes at the tiled mode's scale: windows cut from the native-size support examples.

    Each example is resized by ``scale`` and padded as :func:`support_windows` does (step 1 of the
    module docstring); an episode entry is one ``window``-sized window of one example, normalised as
    the tiled mode normalises its windows. A window with foreground is drawn with probability
    ``fg_fraction`` (always one when the example has no window without, never when it has none with),
    at a position drawn uniformly from that kind on a 7/8-overlap grid. So the network is fine-tuned
    on what :class:`~universeg_plus.inferers.Tiles` shows it: target and support windows at the same
    pixel size, with the same share of foreground windows as its support windows.

    Args:
        images: ``S`` checked images ``(H, W)`` float32 (any sizes).
        foregrounds: Their foreground indicators ``(H, W)`` bool, same sizes.
        window: The model input size ``(h, w)``.
        scale, fg_fraction, normalize: See :class:`universeg_plus.inferers.Tiles`.

    Raises:
        ValueError: no example, a count or size mismatch, an option out of range.
    """

    def __init__(
        self,
        images: Sequence[torch.Tensor],
        foregrounds: Sequence[torch.Tensor],
        window: Sequence[int],
        scale: float = 1.0,
        fg_fraction: float = 0.5,
        normalize: Normalization = "window",
    ) -> None:
        if len(images) < 1 or len(images) != len(foregrounds):
            raise ValueError(
                f"WindowEpisodes needs as many foregrounds as images (at least one), got {len(images)} images "
                f"and {len(foregrounds)} foregrounds"
            )
        for i, (img, fg) in enumerate(zip(images, foregrounds)):
            if tuple(img.shape) != tuple(fg.shape) or img.ndim != 2:
                raise ValueError(
                    f"example {i}: image {tuple(img.shape)} and foreground {tuple(fg.shape)} must be one (H, W) size"
                )
        self.window = check_size(window)
        self.scale = check_scale(scale)
        self.fg_fraction = check_fraction("fg_fraction", fg_fraction)
        self.normalize = check_choice("normalize", normalize, NORMALIZATIONS)
        self.examples = [scaled_example(im, fg.bool(), self.window, self.scale) for im, fg in zip(images, foregrounds)]
        self.corners = [split_corners(fg, self.window, EPISODE_OVERLAP) for _, fg in self.examples]

    def __len__(self) -> int:
        return len(self.examples)

    def cut(self, example: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One random window of ``example``: image ``(h, w)`` float32 in [0, 1], mask ``(h, w)`` float32 in {0, 1}."""
        with_fg, without = self.corners[example]
        draw_fg = bool(with_fg) and (not without or float(torch.rand((), generator=gen)) < self.fg_fraction)
        pool = with_fg if draw_fg else without
        y, x = pool[int(torch.randint(len(pool), (), generator=gen))]
        (wh, ww), (img, fg) = self.window, self.examples[example]
        return window_image(img[y : y + wh, x : x + ww], self.normalize), fg[y : y + wh, x : x + ww].float()

    def draw(self, index: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Episodes of windows: ``index`` ``(B, N)`` example numbers -> images and masks ``(B, N, 1, h, w)``."""
        cuts = [[self.cut(int(i), gen) for i in row] for row in index]
        images = torch.stack([torch.stack([c[0] for c in row]) for row in cuts])[:, :, None]
        masks = torch.stack([torch.stack([c[1] for c in row]) for row in cuts])[:, :, None]
        return images, masks


@dataclass(frozen=True)
class View:
    """One way of segmenting: the global view, the tiled view at ``scale``, or both fused.

    Attributes:
        scale: ``None`` for the global (model input size) view alone, else the tiled scale.
        fusion: With a scale: ``None`` for the tiled view alone, ``"mean"``/``"max"`` to fuse it with
            the global view.
    """

    scale: float | None = None
    fusion: FusionRule | None = None

    def __post_init__(self) -> None:
        if self.scale is not None:
            check_scale(self.scale)
        if self.fusion is not None:
            check_choice("fusion", self.fusion, FUSION_RULES)
            if self.scale is None:
                raise ValueError("a fused view needs a tiled scale")

    @property
    def name(self) -> str:
        """``"global"``, ``"tiled@<scale>"`` or ``"<fusion>@<scale>"``."""
        if self.scale is None:
            return "global"
        return f"{self.fusion or 'tiled'}@{self.scale:g}"
