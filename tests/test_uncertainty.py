"""universeg_plus.uncertainty: sampling plan, sampling through an engine, aggregation, calibration, regions."""

import json

import numpy as np
import pytest
import torch

from universeg_plus.uncertainty import (
    Calibration,
    ModelCalibration,
    binary_entropy,
    connected_components,
    draw_plan,
    expected_dice_error,
    fit_calibration,
    label_map,
    region_outlines,
    sample_probabilities,
    summarize_samples,
    uncertain_regions,
    uncertainty_map,
)
from universeg_plus.uncertainty.metrics import expected_calibration_error, relevant_pixels
from universeg_plus.uncertainty.regions import _components_torch


def test_plan_is_seeded_and_first_sample_is_plain():
    a = draw_plan(10, 8, seed=3)
    assert a == draw_plan(10, 8, seed=3)
    assert a != draw_plan(10, 8, seed=4)
    assert a[0].plain and a[0].indices == tuple(range(10)) and a[0].level is None
    assert sorted(s.level for s in a[1:]) == pytest.approx([(j + 0.5) / 7 for j in range(7)])  # stratified
    assert all(s.level is None for s in draw_plan(10, 8, levels=False))
    assert all(len(s.indices) == 8 for s in a[1:])  # ceil(0.75 * 10)
    assert all(len(set(s.indices)) == len(s.indices) and max(s.indices) < 10 for s in a)
    assert any(not s.plain for s in a[1:])
    assert draw_plan(1, 3)[2].indices == (0,)
    assert all(s.plain for s in draw_plan(4, 4, geometry=False, intensity=False)[:1])
    assert all(s.turns in (0, 2) for s in draw_plan(4, 30, square=False, seed=1))


@pytest.mark.parametrize(
    "kwargs, error",
    [({"samples": 0}, ValueError), ({"samples": True}, TypeError), ({"subset_size": 11}, ValueError),
     ({"max_gamma": 0.5}, ValueError), ({"seed": 1.5}, TypeError)],
)
def test_plan_checks_its_arguments(kwargs, error):
    args = {"n_support": 10, "samples": 4, **kwargs}
    with pytest.raises(error):
        draw_plan(**args)


def test_geometry_is_inverted_exactly_and_intensity_stays_in_range():
    x = torch.rand(2, 1, 16, 16)
    for spec in draw_plan(4, 40, seed=0):
        assert torch.equal(spec.invert(spec.augment_labels(x)), x)
        y = spec.augment_images(x)
        assert y.shape == x.shape and float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def _equivariant_engine(calls):
    """Probability = the target's own intensity (equivariant to geometry); records support sizes."""

    def engine(x, si, sl):
        calls.append(si.shape[0])
        return x[:, 0]

    return engine


def test_sample_probabilities_undoes_geometry_and_uses_each_subset():
    calls = []
    x = torch.rand(3, 1, 16, 16)
    plan = draw_plan(6, 5, intensity=False, seed=2)
    out = sample_probabilities(_equivariant_engine(calls), x, torch.rand(6, 1, 16, 16), torch.ones(6, 1, 16, 16), plan)
    assert out.shape == (5, 3, 16, 16)
    torch.testing.assert_close(out, x[:, 0].expand(5, 3, 16, 16), rtol=0, atol=0)
    assert calls == [len(s.indices) for s in plan]
    with pytest.raises(ValueError, match="support set has 2"):
        sample_probabilities(_equivariant_engine([]), x, torch.rand(2, 1, 16, 16), torch.ones(2, 1, 16, 16), plan)


def test_uncertainty_maps_reference_values():
    torch.testing.assert_close(binary_entropy(torch.tensor([0.5, 0.0, 1.0, 0.11])),
                               torch.tensor([1.0, 0.0, 0.0, 0.4999]), atol=1e-3, rtol=0)
    s = torch.tensor([[0.9, 0.9], [0.1, 0.9], [0.2, 0.9], [0.8, 0.9]])[:, :, None]  # K=4, 2 px
    torch.testing.assert_close(uncertainty_map(s, kind="disagreement")[:, 0], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(uncertainty_map(s, kind="std")[:, 0], torch.tensor([2 * 0.125**0.5, 0.0]), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="entropy"):
        uncertainty_map(s, kind="variance")
    p = torch.tensor([[0.5, 0.5], [0.0, 0.0]])
    m = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    assert float(expected_dice_error(p, m)) == pytest.approx(1 - 2 * 1.0 / 3.0)
    assert float(expected_dice_error(torch.zeros(2, 2), torch.zeros(2, 2))) == 0.0


def test_summary_of_samples_at_image_size():
    k = np.zeros((3, 1, 20, 30), np.float32)
    k[:, 0, 5:15, 5:15] = 0.9
    k[0, 0, 5:15, 15:25] = 0.8  # one sample extends the object: uncertain there
    s = summarize_samples(k, [1], 0.5, Calibration())
    assert s.masks.shape == (3, 20, 30) and s.mean.shape == (1, 20, 30) and s.uncertainty.shape == (20, 30)
    assert s.mean_mask[10, 10] == 1 and s.mean_mask[10, 20] == 0
    # default "error": the probability that the mask is wrong: 1 - 0.9 inside the object, 0.8 / 3 where
    # one sample of three extends it (the mask says background there), 0 where all say background
    np.testing.assert_allclose(s.uncertainty[[10, 10, 0], [10, 20, 0]], [0.1, 0.8 / 3, 0.0], atol=1e-5)
    e = summarize_samples(k, [1], 0.5, Calibration(), kind="entropy")
    assert e.uncertainty[10, 20] > 0.8 and e.uncertainty[0, 0] < 0.01
    assert s.regions and s.regions[0].bbox[1] >= 14
    assert 0.0 < s.score < 1.0
    cut = summarize_samples(k, [1], 0.5, levels=[None, 0.85, 0.95], sample_calibration=Calibration(2.0))
    np.testing.assert_array_equal(cut.masks[0], s.masks[0])
    assert cut.masks[1, 10, 10] == 1 and cut.masks[2, 10, 10] == 1  # 0.9 -> 0.988 after the map
    assert cut.masks[1, 10, 20] == 0  # sample 1 has 0 there
    with pytest.raises(ValueError, match="levels"):
        summarize_samples(k, [1], levels=[None])
    multi = summarize_samples(np.concatenate([k, k[:, :, ::-1]], axis=1), [1, 2], 0.5)
    assert set(np.unique(multi.mean_mask)) <= {0, 1, 2} and multi.mean.shape == (2, 20, 30)


def test_label_map_matches_the_predictor_rule():
    p = np.array([[[0.6, 0.2], [0.3, 0.9]], [[0.7, 0.1], [0.2, 0.95]]])  # (C=2, 2, 2)
    np.testing.assert_array_equal(label_map(p, [1, 3], 0.5), [[3, 0], [0, 3]])


def test_calibration_map_and_storage(tmp_path):
    cal = Calibration(0.5, 0.0)
    p = np.array([0.5, 0.9, 0.1], np.float32)
    out = cal(p)
    assert out.dtype == np.float32 and out[0] == pytest.approx(0.5)
    assert out[1] == pytest.approx(1 / (1 + 3 ** -1), abs=1e-6)  # logit(0.9) = ln 9, halved: ln 3
    torch.testing.assert_close(cal(torch.from_numpy(p)), torch.from_numpy(out))
    assert Calibration()(p) is p
    np.testing.assert_allclose(Calibration(0.4, 0.3).inverse()(Calibration(0.4, 0.3)(p)), p, atol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        Calibration(0.0)
    mc = ModelCalibration(cal, Calibration(1.2, -0.3), {"tasks": ["a"]})
    mc.save(tmp_path)
    assert ModelCalibration.load(tmp_path) == mc
    assert ModelCalibration.load(tmp_path / "none") is None
    (tmp_path / "calibration.json").write_text(json.dumps({"format": 2}))
    with pytest.raises(ValueError, match="not a valid calibration"):
        ModelCalibration.load(tmp_path)


def test_fit_calibration_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 40_000)
    truth = rng.random(z.size) < 1 / (1 + np.exp(-z))  # calibrated logits z
    over = 1 / (1 + np.exp(-2.5 * z))  # overconfident: logits scaled by 2.5
    before = expected_calibration_error(over, truth, relevant_pixels(over, truth))
    cal, info = fit_calibration(over, truth, kind="temperature")
    assert cal.shift == 0.0 and cal.scale == pytest.approx(0.4, rel=0.1)
    assert info["ece_after"] < 0.02 < before
    platt, _ = fit_calibration(over, truth, kind="platt")
    assert platt.scale == pytest.approx(0.4, rel=0.15) and abs(platt.shift) < 0.3


def test_connected_components_and_torch_fallback_agree():
    rng = np.random.default_rng(1)
    m = rng.random((40, 50)) > 0.6
    a, n = connected_components(m)
    b, n2 = _components_torch(torch.as_tensor(m))
    assert n == n2 and n > 3
    np.testing.assert_array_equal(a, b)
    assert connected_components(np.zeros((4, 4)))[1] == 0


def test_regions_are_ranked_by_area_times_uncertainty():
    u = np.zeros((60, 60), np.float32)
    u[0:5, 0:5] = 1.0  # area 25, score 25
    u[20:30, 20:30] = 0.6  # area 100, score 60
    u[50:52, 50:52] = 0.9  # area 4: below the default minimum area (0.05% of 3600 -> 4 is kept)
    regions = uncertain_regions(u, level=0.5)
    assert [r.area for r in regions] == [100, 25, 4]
    assert regions[0].score == pytest.approx(60.0) and regions[0].bbox == (20, 20, 30, 30)
    assert regions[0].as_dict()["rank"] == 1
    assert uncertain_regions(u, level=0.5, top=1, min_area=30)[0].area == 100
    outlines = region_outlines(regions, u.shape)
    assert outlines[20, 25] == 1 and outlines[25, 25] == 0 and outlines[0, 0] == 2
    assert uncertain_regions(np.zeros((8, 8))) == []
    everywhere = np.random.default_rng(0).uniform(0.6, 0.8, (60, 60))
    everywhere[10:30, 10:30] = 0.95  # unsure everywhere (400 px = 11% at 0.95): the regions point at the worst
    assert [r.area for r in uncertain_regions(everywhere)] == [400]
    assert uncertain_regions(everywhere, quantile=0.0)[0].area == 3600


def test_augmented_engine_applies_one_view_to_target_and_support():
    from universeg_plus.uncertainty import AugmentedEngine

    seen = {}

    class Echo:
        fixed_support = None

        def probabilities(self, x, si, sl, subsets=None, flips=False):
            seen.update(x=x, si=si, sl=sl, subsets=subsets)
            return x[:, 0]

    spec = next(s for s in draw_plan(4, 10, seed=5) if s.turns and s.gamma != 1.0)
    x, si, sl = torch.rand(2, 1, 8, 8), torch.rand(3, 1, 8, 8), (torch.rand(3, 1, 8, 8) > 0.5).float()
    out = AugmentedEngine(Echo(), spec).probabilities(x, si, sl, [[0, 1]])
    torch.testing.assert_close(seen["x"], spec.augment_images(x))
    torch.testing.assert_close(seen["si"], spec.augment_images(si))
    torch.testing.assert_close(seen["sl"], spec.augment_labels(sl))
    assert seen["subsets"] == [[0, 1]] and AugmentedEngine(Echo(), spec).fixed_support is None
    torch.testing.assert_close(out, spec.invert(spec.augment_images(x))[:, 0])


def test_leave_one_out_calibration_fits_what_the_support_set_shows():
    from universeg_plus.uncertainty import leave_one_out_calibration, leave_one_out_probabilities

    g = torch.Generator().manual_seed(0)
    masks = (torch.rand(6, 1, 16, 16, generator=g) > 0.5).float()  # half foreground, unrelated to the images
    images = torch.rand(6, 1, 16, 16, generator=g)
    calls = []

    def engine(x, si, sl):  # over-confident: says 0.9 everywhere, right half of the time
        calls.append(si.shape[0])
        return torch.full((x.shape[0], *x.shape[-2:]), 0.9)

    probs = leave_one_out_probabilities(engine, images, masks)
    assert probs.shape == (6, 16, 16) and calls == [5] * 6  # each example from the 5 others
    cal = leave_one_out_calibration(engine, images, masks)
    assert abs(float(cal(torch.tensor([0.9]))) - float(masks.mean())) < 0.05
    stored = Calibration(0.5)
    assert leave_one_out_calibration(engine, images[:1], masks[:1], stored) is stored  # one example
    assert leave_one_out_calibration(engine, images, torch.zeros_like(masks), stored) is stored  # no foreground
    with pytest.raises(ValueError, match="at least 2"):
        leave_one_out_probabilities(engine, images[:1], masks[:1])
