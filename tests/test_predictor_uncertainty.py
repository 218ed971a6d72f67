"""Predictor.predict(..., samples=K): K masks, mean, uncertainty and regions at the image's size; calibration."""

import numpy as np
import pytest

from universeg_plus.factory import load_model
from universeg_plus.hub import save_pretrained
from universeg_plus.predictor import Predictor
from universeg_plus.support import SupportSet
from universeg_plus.uncertainty import Calibration, ModelCalibration, model_calibration


def _pairs(n=5, shape=(40, 52), seed=0):
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for i in range(n):
        m = np.zeros(shape, np.uint8)
        m[8 + i : 24 + i, 10:30] = 1
        images.append((rng.random(shape) * 60 + 150 * m).astype(np.float32))
        masks.append(m)
    return images, masks


@pytest.fixture()
def predictor(model):
    images, masks = _pairs()
    return Predictor(model).set_support(SupportSet.from_arrays(images, masks, model.config.input_size))


def test_samples_give_masks_mean_uncertainty_and_regions_at_image_size(predictor):
    target = _pairs(1, (45, 61), seed=3)[0][0]
    plain = predictor.predict(target)
    pred = predictor.predict(target, samples=4, seed=1)
    assert pred.sample_masks.shape == (4, 45, 61) and pred.sample_masks.dtype == np.uint8
    assert pred.probabilities.shape == (45, 61) and pred.uncertainty.shape == (45, 61)
    assert float(pred.uncertainty.min()) >= 0.0 and float(pred.uncertainty.max()) <= 1.0
    np.testing.assert_array_equal(pred.sample_masks[0], plain.mask)  # sample 0 is the plain prediction
    assert 0.0 <= pred.uncertainty_score <= 1.0
    assert all(r.bbox[2] <= 45 and r.bbox[3] <= 61 for r in pred.regions)
    again = predictor.predict(target, samples=4, seed=1)
    np.testing.assert_array_equal(again.sample_masks, pred.sample_masks)
    np.testing.assert_array_equal(again.uncertainty, pred.uncertainty)
    other = predictor.predict(target, samples=4, seed=2)
    assert not np.array_equal(other.sample_masks[1:], pred.sample_masks[1:])  # the seed draws the views
    # the reported mask is the plain prediction's; its probability is calibrated on the support set
    np.testing.assert_array_equal(pred.mask, plain.mask)
    np.testing.assert_array_equal(other.probabilities, pred.probabilities)
    cal = predictor._support_calibration(1)
    raw = (predictor.calibration.single.inverse() if predictor.calibration else Calibration())(plain.probabilities)
    np.testing.assert_allclose(pred.probabilities, cal(raw), atol=1e-5)
    assert plain.sample_masks is None and plain.uncertainty is None and plain.regions == []


def test_samples_for_batches_and_volumes(predictor):
    batch = _pairs(3, (40, 52), seed=4)[0]  # a list of same-size images
    pred = predictor.predict(batch, samples=3)
    assert pred.sample_masks.shape == (3, 3, 40, 52) and pred.uncertainty.shape == (3, 40, 52)
    assert pred.uncertainty_score.shape == (3,) and len(pred.regions) == 3
    single = predictor.predict(batch[1], samples=3)
    np.testing.assert_array_equal(pred.sample_masks[:, 1], single.sample_masks)
    vol = np.stack(_pairs(4, (40, 52), seed=5)[0], axis=-1)  # (40, 52, 4), sliced along axis 2
    v = predictor.predict_volume(vol, axis=2, samples=3)
    assert v.sample_masks.shape == (3, 40, 52, 4) and v.uncertainty.shape == (40, 52, 4) and v.mask.shape == vol.shape
    np.testing.assert_array_equal(v.sample_masks[..., 2], predictor.predict(vol[..., 2], samples=3).sample_masks)


def test_samples_through_the_tiles_inferer(model):
    from universeg_plus.inferers import Tiles

    images, masks = _pairs(4, (70, 90))
    tiled = Predictor(model, inferer=Tiles(scale=1.0)).set_support(images, masks)
    pred = tiled.predict(images[0], samples=3)
    assert pred.sample_masks.shape == (3, 70, 90) and pred.uncertainty.shape == (70, 90)
    np.testing.assert_array_equal(pred.sample_masks[0], tiled.predict(images[0]).mask)


@pytest.mark.parametrize("kwargs, error", [({"samples": True}, TypeError), ({"samples": 0}, ValueError),
                                           ({"samples": 3, "ensemble": 2}, ValueError)])
def test_sample_options_are_checked(predictor, kwargs, error):
    with pytest.raises(error, match="samples|ensemble"):
        predictor.predict(np.ones((20, 20)), **kwargs)


def test_calibration_changes_probabilities_not_masks(model):
    images, masks = _pairs()
    support = SupportSet.from_arrays(images, masks, model.config.input_size)
    cal = ModelCalibration(Calibration(0.5), Calibration(0.7))
    raw = Predictor(model, calibration=None).set_support(support)
    calibrated = Predictor(model, calibration=cal).set_support(support)
    a, b = raw.predict(images[0]), calibrated.predict(images[0])
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_allclose(b.probabilities, cal.single(a.probabilities), atol=1e-6)
    # with samples, the support set calibrates itself (leave-one-out): the stored map does not enter
    ka, kb = raw.predict(images[0], samples=3), calibrated.predict(images[0], samples=3)
    np.testing.assert_allclose(kb.probabilities, ka.probabilities, atol=1e-6)
    np.testing.assert_array_equal(ka.sample_masks, kb.sample_masks)
    np.testing.assert_array_equal(kb.mask, b.mask)
    # ... except where it cannot: one example, the stored single-prediction map
    one = Predictor(model, calibration=cal).set_support(SupportSet.from_arrays(images[:1], masks[:1],
                                                                               model.config.input_size))
    k1, p1 = one.predict(images[0], samples=2), Predictor(model, calibration=None).set_support(
        SupportSet.from_arrays(images[:1], masks[:1], model.config.input_size)).predict(images[0])
    np.testing.assert_allclose(k1.probabilities, cal.single(p1.probabilities), atol=1e-5)
    with pytest.raises(TypeError, match="calibration"):
        Predictor(model, calibration="yes")


def test_calibration_stored_with_the_weights_is_applied_by_default(model, tmp_path):
    save_pretrained(model, tmp_path)
    assert model_calibration(load_model(tmp_path)) is None
    ModelCalibration(Calibration(0.5), Calibration(0.8), {"tasks": ["x"]}).save(tmp_path)
    loaded = load_model(tmp_path)
    assert model_calibration(loaded).single == Calibration(0.5)
    assert Predictor(loaded).calibration == model_calibration(loaded)
    assert Predictor(tmp_path).calibration == model_calibration(loaded)  # a folder given by path
    assert Predictor("universeg-small").calibration.info["fitted_on"][0] == "acdc_cardiac_mri"  # shipped
    assert Predictor(loaded, calibration=None).calibration is None
