import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from universeg_plus.metrics import (
    compute_metrics,
    dice,
    hd95,
    iou,
    per_class_metrics,
    sensitivity,
    specificity,
)


def _squares():
    a = np.zeros((10, 10), bool)
    a[2:6, 2:6] = True  # 16 px
    b = np.zeros((10, 10), bool)
    b[3:7, 3:7] = True  # 16 px, overlap 9
    return a, b


def test_ratios_match_hand_counts():
    a, b = _squares()
    tp, fp, fn, tn = 9, 7, 7, 100 - 23
    assert float(dice(a, b)) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert float(iou(a, b)) == pytest.approx(tp / (tp + fp + fn))
    assert float(sensitivity(a, b)) == pytest.approx(tp / (tp + fn))
    assert float(specificity(a, b)) == pytest.approx(tn / (tn + fp))


def test_batched_shape_and_torch_numpy_agree():
    a, b = _squares()
    pred = np.stack([[a, b], [b, a]])  # (2, 2, H, W)
    ref = np.stack([[b, b], [b, b]])
    d = dice(pred, ref)
    assert d.shape == (2, 2)
    torch.testing.assert_close(d, dice(torch.from_numpy(pred).float(), torch.from_numpy(ref).long()))
    torch.testing.assert_close(d[0, 1], torch.tensor(1.0))


def test_empty_masks_defined():
    z = np.zeros((8, 8), bool)
    full = np.ones((8, 8), bool)
    one = z.copy()
    one[3, 3] = True
    assert float(dice(z, z)) == 1.0
    assert float(dice(z, z, empty_value=0.0)) == 0.0
    assert float(iou(z, z)) == 1.0
    assert float(dice(one, z)) == 0.0
    assert float(sensitivity(one, z)) == 1.0  # empty reference
    assert float(specificity(z, full)) == 1.0  # no background in reference
    assert float(hd95(z, z)) == 0.0
    assert math.isinf(float(hd95(one, z)))
    assert math.isinf(float(hd95(z, one)))


def _reference_hd95(p, r, spacing):
    """Independent reference: distance transforms of the surfaces (scipy), MONAI definition, any N-D."""
    face = ndimage.generate_binary_structure(p.ndim, 1)
    sp = p & ~ndimage.binary_erosion(p, structure=face)
    sr = r & ~ndimage.binary_erosion(r, structure=face)
    dt_r = ndimage.distance_transform_edt(~sr, sampling=spacing)
    dt_p = ndimage.distance_transform_edt(~sp, sampling=spacing)
    return max(np.percentile(dt_r[sp], 95), np.percentile(dt_p[sr], 95))


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 2.0)])
def test_hd95_matches_distance_transform_reference(spacing):
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = ndimage.binary_dilation(rng.random((40, 50)) > 0.97, iterations=3)
        r = ndimage.binary_dilation(rng.random((40, 50)) > 0.97, iterations=2)
        got = float(hd95(p, r, spacing=spacing))
        assert got == pytest.approx(_reference_hd95(p, r, spacing), rel=1e-5, abs=1e-5)


def test_hd95_known_shift():
    a = np.zeros((20, 20), bool)
    a[5:10, 5:10] = True
    b = np.roll(a, 3, axis=1)
    # the surfaces' farthest 95% are 3 px apart along the shift
    assert float(hd95(a, b)) == pytest.approx(3.0, abs=1e-6)
    assert float(hd95(a, a)) == 0.0


def test_compute_metrics_keys_and_per_class():
    a, b = _squares()
    m = compute_metrics(a, b)
    assert set(m) == {"dice", "iou", "sensitivity", "specificity", "hd95"}
    assert all(isinstance(v, float) for v in m.values())
    pred = a.astype(np.int64) + 2 * (np.roll(b, 3, axis=0) & ~a)
    ref = b.astype(np.int64) + 2 * (np.roll(b, 3, axis=0) & ~b)
    per = per_class_metrics(pred, ref, classes=[1, 2])
    assert set(per) == {1, 2}
    assert per[1]["dice"] == pytest.approx(float(dice(pred == 1, ref == 1)))
    assert per[2]["iou"] == pytest.approx(float(iou(pred == 2, ref == 2)))


def test_input_errors():
    a, b = _squares()
    with pytest.raises(ValueError, match="same shape"):
        dice(a, b[:5])
    with pytest.raises(ValueError, match="binary"):
        dice(a * 0.5, b)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        dice(a.tolist(), b)
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W\)"):
        iou(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="spacing must be positive"):
        hd95(a, b, spacing=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"spacing \(1.0, 1.0, 1.0\) names 3 spatial axes but the masks have only 2"):
        hd95(a, b, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"one entry per axis of the masks \(3 for shape \(2, 10, 10\)\)"):
        compute_metrics(np.stack([a, a]), np.stack([b, b]), spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="integer labels"):
        per_class_metrics(a * 0.5, b.astype(float), [1])


def _blobs(shape, seed, density=0.999, iterations=3):
    rng = np.random.default_rng(seed)
    return ndimage.binary_dilation(rng.random(shape) > density, iterations=iterations)


@pytest.mark.parametrize("spacing", [None, (2.5, 0.8, 0.9)])
def test_compute_metrics_on_volumes_matches_counts_and_reference(spacing):
    p, r = _blobs((24, 30, 36), 1), _blobs((24, 30, 36), 2, iterations=2)
    assert p.any() and r.any()
    m = compute_metrics(p, r, spacing=spacing)
    tp, fp, fn = (p & r).sum(), (p & ~r).sum(), (~p & r).sum()
    tn = p.size - tp - fp - fn
    assert m["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn), rel=1e-6)
    assert m["iou"] == pytest.approx(tp / (tp + fp + fn), rel=1e-6)
    assert m["sensitivity"] == pytest.approx(tp / (tp + fn), rel=1e-6)
    assert m["specificity"] == pytest.approx(tn / (tn + fp), rel=1e-6)
    expected = _reference_hd95(p, r, spacing or (1.0, 1.0, 1.0))
    assert m["hd95"] == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_hd95_volume_known_shift_and_batched_volumes():
    a = np.zeros((12, 20, 20), bool)
    a[3:9, 5:10, 5:10] = True
    b = np.roll(a, 2, axis=0)  # 2 slices apart along the first axis
    assert float(hd95(a, b, spacing=(1.0, 1.0, 1.0))) == pytest.approx(2.0, abs=1e-6)
    assert float(hd95(a, b, spacing=(3.0, 1.0, 1.0))) == pytest.approx(6.0, abs=1e-6)
    batch = hd95(np.stack([a, a]), np.stack([a, b]), spacing=(3.0, 1.0, 1.0))
    assert batch.shape == (2,) and batch.tolist() == pytest.approx([0.0, 6.0], abs=1e-6)


def test_per_class_metrics_on_label_volumes():
    a, b = _blobs((16, 20, 24), 3), _blobs((16, 20, 24), 4)
    pred = a.astype(np.int64) + 2 * (b & ~a)
    ref = b.astype(np.int64) + 2 * (a & ~b)
    per = per_class_metrics(pred, ref, classes=[1, 2], spacing=(2.0, 1.0, 1.0))
    for c in (1, 2):
        assert per[c] == compute_metrics(pred == c, ref == c, spacing=(2.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"label map \(H, W\), \(D, H, W\) or N-D, got shape \(4,\)"):
        per_class_metrics(np.zeros(4), np.zeros(4), [1])
