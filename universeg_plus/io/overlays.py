"""Readable segmentation overlays as images (Pillow only): enlarged panels, titles, a label legend."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .images import label_colour, overlay_mask

__all__ = ["overlay_figure"]

_WHITE = (255, 255, 255)
_INK = (20, 20, 20)


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled TrueType font (needs FreeType)
    except (TypeError, ValueError, OSError, ImportError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def _upscale(image: np.ndarray, mask: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Image bilinear (after min-max to 0..255), mask nearest, both ``factor`` times larger."""
    from PIL import Image

    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        img = img[..., :3]
    lo, hi = float(img.min()), float(img.max())
    display = ((img - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(img)).round().astype(np.uint8)
    h, w = mask.shape
    big = np.asarray(Image.fromarray(display).resize((w * factor, h * factor), Image.Resampling.BILINEAR))
    return big, np.repeat(np.repeat(np.asarray(mask), factor, axis=0), factor, axis=1)


def overlay_figure(
    image: np.ndarray,
    panels: Sequence[tuple[str, np.ndarray]],
    legend: Mapping[int, str],
    min_size: int = 384,
    gap: int = 16,
    font_size: int = 18,
) -> np.ndarray:
    """Side-by-side overlays of label maps on one image, upscaled, titled, with a colour legend.

    Each panel is ``image`` with one label map coloured over it (:func:`overlay_mask` colours),
    enlarged by the smallest whole factor that makes its longer side at least ``min_size`` pixels
    (image bilinear, mask nearest, so label borders stay exact), with its title above it. Panels
    are separated by ``gap`` white pixels; below them a legend shows each label's colour and name.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)``, any numeric range (min-max scaled for display).
        panels: ``(title, mask)`` pairs; each mask an ``(H, W)`` integer label map, 0 = background.
        legend: Label -> text for the legend (e.g. ``{1: "grey matter"}``), labels >= 1.
        min_size: Minimum longer side of a panel in pixels (images already that large are not scaled).
        gap: White space between and around panels, in pixels.
        font_size: Text height in pixels.

    Returns:
        ``(H', W', 3)`` uint8 RGB figure.

    Raises:
        ValueError: no panels, a mask whose shape differs from the image's, or bad sizes.
    """
    from PIL import Image, ImageDraw

    if not panels:
        raise ValueError("overlay_figure needs at least one (title, mask) panel")
    if min_size < 1 or gap < 0 or font_size < 1:
        raise ValueError(f"min_size and font_size must be >= 1 and gap >= 0, got {min_size}, {font_size}, {gap}")
    shape = np.asarray(image).shape[:2]
    for title, mask in panels:
        if np.asarray(mask).shape != shape:
            raise ValueError(f"mask of panel {title!r} has shape {np.asarray(mask).shape}, the image {shape}")
    factor = max(1, math.ceil(min_size / max(shape)))
    tiles = [overlay_mask(*_upscale(image, np.asarray(mask), factor)) for _, mask in panels]
    ph, pw = tiles[0].shape[:2]
    font = _font(font_size)
    line = font_size + font_size // 2
    width = len(tiles) * pw + (len(tiles) + 1) * gap

    # legend entries flow left to right and wrap onto new rows
    swatch, entries, rows, x = font_size, [], 0, gap
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for label, text in sorted(legend.items()):
        w = swatch + 6 + int(math.ceil(measure.textlength(str(text), font=font)))
        if x > gap and x + w > width - gap:
            rows, x = rows + 1, gap
        entries.append((label, str(text), x, rows))
        x += w + 2 * gap
    legend_h = (rows + 1) * line if entries else 0
    height = gap + line + ph + (gap + legend_h if entries else 0) + gap

    canvas = Image.new("RGB", (width, height), _WHITE)
    draw = ImageDraw.Draw(canvas)
    top = gap + line
    for k, ((title, _), tile) in enumerate(zip(panels, tiles)):
        left = gap + k * (pw + gap)
        draw.text((left, gap), str(title), fill=_INK, font=font)
        canvas.paste(Image.fromarray(tile), (left, top))
    y0 = top + ph + gap
    for label, text, x, row in entries:
        y = y0 + row * line
        draw.rectangle([x, y, x + swatch - 1, y + swatch - 1], fill=label_colour(label), outline=_INK)
        draw.text((x + swatch + 6, y), text, fill=_INK, font=font)
    return np.asarray(canvas)
