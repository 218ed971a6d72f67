"""Overlay figures (universeg_plus.io.overlays.overlay_figure): size, upscaling, titles and legend."""

from __future__ import annotations

import numpy as np
import pytest

from universeg_plus.io.overlays import overlay_figure
from universeg_plus.io.images import label_colour, overlay_mask

WHITE = np.array([255, 255, 255])


def _boxes(fig: np.ndarray, colour) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(np.all(fig == np.asarray(colour, dtype=np.uint8), axis=-1))
    assert rows.size, f"colour {colour} not found in the figure"
    return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


def test_panels_are_upscaled_nearest_with_gap_titles_and_legend():
    image = np.zeros((40, 30), np.float32)  # black image: a painted pixel is exactly alpha * colour
    pred = np.zeros((40, 30), np.uint8)
    pred[10:20, 5:15] = 1
    ref = np.zeros((40, 30), np.uint8)
    ref[22:30, 12:24] = 2
    fig = overlay_figure(image, [("prediction, Dice 0.50", pred), ("reference", ref)],
                         {1: "grey matter", 2: "white matter"}, min_size=384, gap=16)
    assert fig.dtype == np.uint8 and fig.ndim == 3 and fig.shape[-1] == 3
    factor = 10  # smallest whole factor with 40 * k >= 384
    assert fig.shape[1] == 2 * 30 * factor + 3 * 16

    # each label region is its mask region scaled by exactly `factor` (nearest: no blurred border)
    tint = {c: tuple(np.round(0.45 * np.array(label_colour(c))).astype(int)) for c in (1, 2)}
    r0, r1, c0, c1 = _boxes(fig, tint[1])
    assert (r1 - r0, c1 - c0) == (10 * factor, 10 * factor)
    q0, q1, d0, d1 = _boxes(fig, tint[2])
    assert (q1 - q0, d1 - d0) == (8 * factor, 12 * factor)
    # the two panels are side by side with a white gap between them
    left_panel_right = c0 - 5 * factor + 30 * factor
    assert d0 - 12 * factor == left_panel_right + 16
    assert np.all(fig[r0:r1, left_panel_right : left_panel_right + 16] == WHITE)
    assert r0 - 10 * factor == q0 - 22 * factor, "panels share one top edge"

    top = r0 - 10 * factor
    assert top > 16 and (fig[:top] != WHITE).any(), "titles are drawn above the panels"
    # legend below the panels: one swatch of each label's pure colour
    below = fig[top + 40 * factor :]
    for c in (1, 2):
        assert np.all(below == np.asarray(label_colour(c), dtype=np.uint8), axis=-1).sum() >= 100, f"swatch {c}"


def test_large_images_are_not_scaled_and_text_wraps():
    image = np.random.default_rng(0).random((400, 500))
    mask = (image > 0.5).astype(np.uint8)
    legend = {k: f"a rather long label name number {k}" for k in range(1, 8)}
    fig = overlay_figure(image, [("only", mask)], legend)
    assert fig.shape[1] == 500 + 2 * 16
    panel_rows = np.nonzero(np.all(fig == overlay_mask(image, mask)[0, 0], axis=-1).any(axis=1))[0]
    assert panel_rows.size
    assert fig.shape[0] > 400 + 7 * 20, "seven long legend entries wrap onto several rows"


def test_overlay_figure_input_errors():
    image = np.zeros((8, 8))
    with pytest.raises(ValueError, match="at least one"):
        overlay_figure(image, [], {})
    with pytest.raises(ValueError, match=r"mask of panel 'p' has shape \(4, 4\), the image \(8, 8\)"):
        overlay_figure(image, [("p", np.zeros((4, 4), np.uint8))], {})
    with pytest.raises(ValueError, match="label must be >= 1"):
        label_colour(0)
