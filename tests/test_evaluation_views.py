"""Choosing the view (whole image, tiles, fused) by leave-one-out Dice on the support set."""

import pytest
import torch
from test_inferers import WINDOW, _pairs  # the images with a bright square, and their masks

from universeg_plus import create_model
from universeg_plus.evaluation.views import choose_view
from universeg_plus.windows import View


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(1)
    return create_model("universeg-tiny").eval()


def test_choose_view_scores_every_candidate(model):
    images, masks = _pairs(n=4, shape=(40, 60))
    view, scores = choose_view(model, images, masks, scales=(1.0, 0.5), n_val=2, windows_per_support=2)
    assert set(scores) == {"global", "tiled@1", "mean@1", "max@1", "tiled@0.5", "mean@0.5", "max@0.5"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert scores[view.name] == max(scores.values())
    again = choose_view(model, images, masks, scales=(1.0, 0.5), n_val=2, windows_per_support=2)
    assert again == (view, scores)
    view, scores = choose_view(model, images, masks, scales=(1.0,), fusions=(), n_val=1)
    assert set(scores) == {"global", "tiled@1"}


def test_choose_view_prefers_the_global_view_on_ties(model):
    # window-size images at scale 1: the tiled view is the global view, so every candidate ties
    images, masks = _pairs(n=3, shape=WINDOW)
    view, scores = choose_view(model, images, masks, scales=(1.0,), n_val=3, normalize="image")
    assert len(set(scores.values())) == 1
    assert view == View()


def test_choose_view_validation(model):
    images, masks = _pairs(n=2)
    with pytest.raises(ValueError, match="at least 2 support pairs"):
        choose_view(model, images[:1], masks[:1])
    with pytest.raises(ValueError, match="n_val must be a positive integer"):
        choose_view(model, images, masks, n_val=0)
    with pytest.raises(ValueError, match="at least one scale"):
        choose_view(model, images, masks, scales=())
    with pytest.raises(ValueError, match="fusion must be one of"):
        choose_view(model, images, masks, fusions=("median",))
