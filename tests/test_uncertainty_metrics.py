"""universeg_plus.uncertainty.metrics against brute-force and library reference values."""

import numpy as np
import pytest
import torch

from universeg_plus.uncertainty.metrics import (
    auroc,
    boundary,
    boundary_band,
    candidate_dice,
    expected_calibration_error,
    relevant_pixels,
    spearman,
)


def test_ece_reference_values():
    p = np.array([0.05, 0.05, 0.95, 0.95, 0.55, 0.55])
    y = np.array([0, 0, 1, 0, 1, 1])
    # bins: 0.05 -> rate 0 (|0.05|, 2 px), 0.95 -> rate 0.5 (|0.45|, 2 px), 0.55 -> rate 1 (|0.45|, 2 px)
    assert expected_calibration_error(p, y) == pytest.approx((2 * 0.05 + 2 * 0.45 + 2 * 0.45) / 6)
    where = np.array([1, 1, 0, 0, 1, 1], bool)
    assert expected_calibration_error(p, y, where) == pytest.approx((2 * 0.05 + 2 * 0.45) / 4)
    assert np.isnan(expected_calibration_error(p, y, np.zeros(6, bool)))
    assert expected_calibration_error(torch.tensor([1.0, 0.0]), torch.tensor([1, 0])) == pytest.approx(0.0)


def test_relevant_pixels_are_confident_background_excluded():
    p = np.array([[0.01, 0.3], [0.001, 0.9]])
    y = np.array([[0, 0], [1, 0]])
    np.testing.assert_array_equal(relevant_pixels(p, y), [[False, True], [True, True]])


def test_auroc_matches_pairwise_count():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 300).astype(float)  # many ties
    y = rng.random(300) < 0.3
    pos, neg = s[y], s[~y]
    brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert auroc(s, y) == pytest.approx(brute)
    assert auroc(np.array([1.0, 2.0]), np.array([0, 1])) == 1.0
    assert np.isnan(auroc(np.ones(3), np.ones(3)))


def test_spearman_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, 40).astype(float)
    y = x + rng.normal(0, 2, 40)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 2], [1, 2])) and np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_boundary_band_width():
    m = np.zeros((100, 100), bool)
    m[30:70, 30:70] = True
    edge = boundary(m)
    assert bool(edge[30, 50]) and bool(edge[29, 50]) and not bool(edge[50, 50])
    band = boundary_band(m, m, 0.02)  # radius 2 px around both sides of the edge
    assert band[27, 50] and band[32, 50] and not band[26, 50] and not band[33, 50] and not band[50, 50]
    shifted = np.roll(m, 10, axis=1)
    both = boundary_band(m, shifted, 0.02)
    assert both[50, 28] and both[50, 38] and not both[50, 33]
    with pytest.raises(ValueError):
        boundary_band(m, m, 0.0)


def test_candidate_dice():
    ref = np.zeros((10, 10), bool)
    ref[:5] = True
    cands = np.stack([ref, ~ref, np.zeros_like(ref)])
    out = candidate_dice(cands, ref)
    assert out["each"] == pytest.approx([1.0, 0.0, 0.0])
    assert out["best"] == 1.0 and out["mean"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="K, H, W"):
        candidate_dice(ref, ref)
