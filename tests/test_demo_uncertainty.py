"""The demo's uncertainty panel: samples -> heat map with outlined regions, equal to the Predictor's map."""

import numpy as np
import pytest
import torch
from test_demo import _pairs  # the demo tests' synthetic PNG pairs (a bright disc on noise)

from universeg_plus import create_model
from universeg_plus.demo.logic import ModelCache, SegmentSettings, run_segmentation
from universeg_plus.demo.uncertainty_view import regions_markdown, uncertainty_image
from universeg_plus.io.heatmaps import draw_outlines, heat_map
from universeg_plus.io.images import read_image
from universeg_plus.predictor import Predictor
from universeg_plus.support import SupportSet

TINY = "universeg-tiny"


def test_heat_map_and_outlines():
    rgb = heat_map(np.array([[0.0, 0.5], [1.0, np.nan]]))
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert tuple(rgb[0, 0]) == (0, 0, 4) and tuple(rgb[1, 0]) == (252, 255, 164) and tuple(rgb[1, 1]) == (0, 0, 4)
    assert rgb[0, 1].sum() > rgb[0, 0].sum()
    out = draw_outlines(rgb, np.array([[0, 1], [0, 0]]))
    assert tuple(out[0, 1]) == (0, 255, 255) and tuple(out[0, 0]) == tuple(rgb[0, 0])
    with pytest.raises(ValueError):
        heat_map(np.zeros(3))


def test_samples_setting_shows_the_predictors_uncertainty(tmp_path):
    torch.set_num_threads(1)
    images, masks = _pairs(tmp_path, n=4)
    cache = ModelCache([TINY])
    result = run_segmentation(
        images[:3], masks[:3], images[3], None, SegmentSettings(model=TINY, samples=3, seed=2), cache, tmp_path / "o"
    )
    torch.manual_seed(0)
    support = SupportSet.from_paths(images[:3], masks[:3], size=(32, 32))
    expected = Predictor(create_model(TINY)).set_support(support).predict(read_image(images[3]), samples=3, seed=2)
    np.testing.assert_array_equal(result.prediction.uncertainty, expected.uncertainty)
    np.testing.assert_array_equal(result.uncertainty, uncertainty_image(expected))
    assert result.uncertainty.shape == (40, 48, 3)
    assert "**Uncertainty** (3 samples)" in result.summary
    assert regions_markdown(expected, 3) in result.summary
    plain = run_segmentation(images[:3], masks[:3], images[3], None, SegmentSettings(model=TINY), cache, tmp_path / "p")
    assert plain.uncertainty is None and "Uncertainty" not in plain.summary
    with pytest.raises(ValueError, match="ensemble to 1"):
        run_segmentation(images[:3], masks[:3], images[3], None, SegmentSettings(model=TINY, samples=3, ensemble=2),
                         cache, tmp_path / "q")
