"""The demo's Colour choice: RGB support uploads and target projected as ``Predictor.set_support(..., colour=)``
does, the projection (and the leave-one-out scores with auto) named in the summary; grey uploads unchanged."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_demo import _pairs  # the demo tests' synthetic grey PNG pairs

from universeg_plus import create_model
from universeg_plus.demo.logic import ModelCache, SegmentSettings, run_segmentation
from universeg_plus.io.images import overlay_mask
from universeg_plus.predictor import Predictor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_colour import make_task  # noqa: E402  (the synthetic hue task: equal luma, other hue)

TINY = "universeg-tiny"


@pytest.fixture(scope="module")
def rgb_uploads(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rgb")
    images, masks = make_task(4, n=40, seed=12)
    paths = []
    for k, (im, m) in enumerate(zip(images, masks)):
        Image.fromarray(im).save(folder / f"photo{k}.png")
        Image.fromarray(m * 255).save(folder / f"photo{k}_mask.png")
        paths.append((folder / f"photo{k}.png", folder / f"photo{k}_mask.png"))
    return paths, images, masks


def _run(paths, settings, cache, out):
    return run_segmentation([p[0] for p in paths[:3]], [p[1] for p in paths[:3]], paths[3][0], None, settings, cache,
                            out)


def test_fisher_is_the_predictors_projection_and_is_named(rgb_uploads, tmp_path):
    torch.set_num_threads(1)
    paths, images, masks = rgb_uploads
    result = _run(paths, SegmentSettings(model=TINY, colour="fisher"), ModelCache([TINY]), tmp_path / "o")
    torch.manual_seed(0)
    expected = Predictor(create_model(TINY)).set_support(images[:3], masks[:3], colour="fisher")
    pred = expected.predict(images[3])
    np.testing.assert_allclose(result.prediction.probabilities, pred.probabilities, atol=1e-6)
    np.testing.assert_array_equal(result.image, expected.colour(images[3]))  # what the network saw
    np.testing.assert_array_equal(result.overlay, overlay_mask(images[3], result.prediction.mask))  # in colour
    weights = ", ".join(f"{c} {w:.2f}" for c, w in zip("RGB", expected.colour.weights))
    assert f"**Colour** fisher; weights {weights}" in result.summary


def test_auto_shows_its_scores_and_luma_or_grey_uploads_change_nothing(rgb_uploads, tmp_path):
    torch.set_num_threads(1)
    paths, _, _ = rgb_uploads
    cache = ModelCache([TINY])
    auto = _run(paths, SegmentSettings(model=TINY, colour="auto"), cache, tmp_path / "a")
    assert "**Colour** " in auto.summary and "leave-one-out Dice on the support set: luma " in auto.summary
    assert "fisher 0." in auto.summary.split("**Colour** ")[1]
    luma = _run(paths, SegmentSettings(model=TINY), cache, tmp_path / "l")
    assert "Colour" not in luma.summary
    grey_images, grey_masks = _pairs(tmp_path / "grey", n=4)
    plain, fisher = (
        run_segmentation(grey_images[:3], grey_masks[:3], grey_images[3], None, SegmentSettings(model=TINY, colour=c),
                         cache, tmp_path / c)
        for c in ("luma", "fisher")
    )
    np.testing.assert_array_equal(fisher.prediction.probabilities, plain.prediction.probabilities)
    assert "**Colour** luma (fisher asked; the support images are grey: nothing to project)" in fisher.summary
    with pytest.raises(ValueError, match="the target is grey, but the support images were projected"):
        run_segmentation([p[0] for p in paths[:3]], [p[1] for p in paths[:3]], grey_images[3], None,
                         SegmentSettings(model=TINY, colour="fisher"), cache, tmp_path / "x")
    with pytest.raises(ValueError, match="colour choice must be one of luma, fisher, auto"):
        _run(paths, SegmentSettings(model=TINY, colour="hsv"), cache, tmp_path / "y")
