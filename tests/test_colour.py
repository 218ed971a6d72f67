"""Colour to grey: the support set's Fisher direction separates a structure that differs from its
background in hue only (where luma cannot), is applied identically to any image, and the
leave-one-out choice scores every projection."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from single_thread import one_thread  # noqa: F401  (autouse: one torch thread)

from universeg_plus import create_model
from universeg_plus.colour import LUMA, ColourProjection, check_colour, choose_projection, fit_colour, fit_projection

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_colour import make_task  # noqa: E402  (the benchmark's synthetic colour task)


def test_fisher_separates_what_luma_cannot() -> None:
    images, masks = make_task(4, n=48, seed=0)
    proj = fit_projection(images, masks)
    luma = ColourProjection("luma", LUMA)
    for im, m in zip(images, masks):
        f, g = proj(im), luma(im)
        assert f.dtype == np.float32 and f.shape == (48, 48) and 0 <= f.min() and f.max() <= 1
        fg, bg = m > 0, m == 0
        # contrast in units of the background spread: Fisher large, luma small (equal luma by construction)
        assert (f[fg].mean() - f[bg].mean()) / f[bg].std() > 2.0
        assert abs(g[fg].mean() - g[bg].mean()) / g[bg].std() < 1.0


def test_projection_accepts_uint8_and_float_alike_and_checks_input() -> None:
    images, masks = make_task(2, n=32, seed=1)
    proj = fit_projection(images, masks)
    np.testing.assert_allclose(proj(images[0]), proj(images[0].astype(np.float32) / 255), atol=1e-6)
    with pytest.raises(ValueError, match="RGB"):
        proj(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="foreground and background"):
        fit_projection([images[0]], [np.zeros((32, 32))])
    with pytest.raises(ValueError, match="as many masks"):
        fit_projection(images, masks[:1])


def test_choice_scores_every_projection() -> None:
    torch.manual_seed(0)
    model = create_model("universeg-tiny").eval()
    images, masks = make_task(3, n=32, seed=2)
    chosen, scores = choose_projection(model, images, masks)
    assert set(scores) == {"luma", "red", "green", "blue", "fisher"}
    assert all(0 <= v <= 1 for v in scores.values())
    assert chosen.name == max(scores, key=lambda k: (scores[k], k == "luma"))
    # an example without foreground: the fold whose others hold none scores Fisher as luma (nothing to fit)
    empty = [masks[0], np.zeros_like(masks[1])]
    _, scores = choose_projection(model, images[:2], empty)
    assert set(scores) == {"luma", "red", "green", "blue", "fisher"}


def test_16_bit_rgb_projects_as_8_bit_does() -> None:
    images, masks = make_task(2, n=32, seed=3)
    proj = fit_projection(images, masks)
    wide = images[0].astype(np.uint16) * 257  # the same colours on 0..65535
    np.testing.assert_allclose(proj(wide), proj(images[0]), atol=1e-6)


def test_fit_colour_keeps_the_input_rules_luma_where_asked_or_nothing_to_choose() -> None:
    model = create_model("universeg-tiny").eval()
    images, masks = make_task(3, n=32, seed=4)
    grey = [im[..., 1] for im in images]
    assert fit_colour("luma", model, images, masks) == (None, {})
    assert fit_colour("auto", model, grey, masks) == (None, {})  # a grey set stays exactly as it is
    proj, scores = fit_colour("fisher", model, images, masks)
    assert proj == fit_projection(images, masks) and scores == {}
    assert check_colour(proj) is proj
    assert check_colour(ColourProjection("luma", LUMA)) == "luma"  # e.g. predictor.colour of a grey set
    with pytest.raises(ValueError, match="support image b is grayscale"):
        fit_colour("fisher", model, [images[0], grey[1]], masks[:2], names=["a", "b"])
