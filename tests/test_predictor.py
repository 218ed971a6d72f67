import os
import sys
import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from universeg_plus import create_model
from universeg_plus.predictor import Prediction, Predictor, segment
from universeg_plus.support import SupportSet, preprocess_image


def _support(n=6, shape=(60, 70), labels=(1,), seed=0):
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for i in range(n):
        img = rng.random((*shape, 3)) * 50
        m = np.zeros(shape, np.uint8)
        for j, lab in enumerate(labels):
            m[10 + 5 * j + i : 25 + 5 * j + i, 10 + 20 * j : 25 + 20 * j] = lab
        img[m > 0] += 150
        images.append(img.astype(np.uint8))
        masks.append(m)
    return images, masks


def _reference_probs(model, target, support: SupportSet, label=1):
    """Independent path: preprocess -> model -> sigmoid, at the model size."""
    x = preprocess_image(target, model.config.input_size)[None]
    with torch.no_grad():
        logits = model(x, support.images[None], (support.masks == label).float()[None])
    return torch.sigmoid(logits)


class Recorder(torch.nn.Module):
    """Wraps a model and records the (B, S) of every call."""

    def __init__(self, inner, support_size=None, batch_size=None):
        super().__init__()
        self.inner = inner
        self.config = inner.config
        self.calls = []
        if support_size is not None:
            self.support_size = support_size
        if batch_size is not None:
            self.batch_size = batch_size

    def forward(self, x, si, sl):
        self.calls.append((si.shape[0], si.shape[1]))
        return self.inner(x, si, sl)


def test_predict_before_support_raises(model):
    with pytest.raises(RuntimeError, match="set_support"):
        Predictor(model).predict(np.zeros((10, 10)))


def test_original_size_round_trip_odd_rgb(model):
    images, masks = _support(shape=(173, 211))
    support = SupportSet.from_arrays(images, masks, size=(32, 32))
    pred = Predictor(model).set_support(support).predict(images[0])
    assert isinstance(pred, Prediction)
    assert pred.probabilities.shape == (173, 211) and pred.probabilities.dtype == np.float32
    assert pred.mask.shape == (173, 211) and pred.mask.dtype == np.uint8
    ref = _reference_probs(model, images[0], support)
    ref_full = F.interpolate(ref, size=(173, 211), mode="bilinear", align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(pred.probabilities, ref_full, atol=1e-5)
    np.testing.assert_array_equal(pred.mask, (ref_full > 0.5).astype(np.uint8))


def test_batch_equals_single_and_threshold(model):
    images, masks = _support()
    p = Predictor(model).set_support(SupportSet.from_arrays(images, masks, size=(32, 32)))
    batch = p.predict(images[:3])
    assert batch.probabilities.shape == (3, 60, 70) and batch.mask.shape == (3, 60, 70)
    for i in range(3):
        np.testing.assert_allclose(batch.probabilities[i], p.predict(images[i]).probabilities, atol=1e-5)
    low = p.predict(images[0], threshold=0.1)
    np.testing.assert_array_equal(low.mask, (low.probabilities > 0.1).astype(np.uint8))
    with pytest.raises(ValueError, match="threshold"):
        p.predict(images[0], threshold=1.5)
    with pytest.raises(ValueError, match="differ in size"):
        p.predict([images[0], images[1][:50]])
    many = p.predict_many([images[0], images[1][:50]])
    assert [m.mask.shape for m in many] == [(60, 70), (50, 70)]
    with pytest.raises(ValueError, match="2D image"):
        p.predict(np.zeros((2, 3, 4, 5)))


def test_multiclass_one_vs_rest_then_argmax(model):
    images, masks = _support(labels=(1, 2))
    support = SupportSet.from_arrays(images, masks, size=(32, 32))
    p = Predictor(model).set_support(support)
    pred = p.predict(images[0], threshold=0.5)
    assert pred.classes == [1, 2] and pred.probabilities.shape == (2, 60, 70)
    for k, c in enumerate([1, 2]):
        single = Predictor(model).set_support(support.binary(c)).predict(images[0])
        np.testing.assert_allclose(pred.probabilities[k], single.probabilities, atol=1e-5)
    probs = pred.probabilities
    expected = np.where(probs.max(0) > 0.5, np.array([1, 2])[probs.argmax(0)], 0)
    np.testing.assert_array_equal(pred.mask, expected)
    # background exactly where every class is at or below the threshold
    t = float(np.quantile(probs.max(0), 0.5))
    cut = p.predict(images[0], threshold=t).mask
    np.testing.assert_array_equal(cut == 0, probs.max(0) <= t)
    assert 0 < (cut == 0).mean() < 1


def test_ensemble_is_seeded_mean_over_subsets(model):
    images, masks = _support(n=8)
    support = SupportSet.from_arrays(images, masks, size=(32, 32))
    p = Predictor(model).set_support(support)
    a = p.predict(images[0], ensemble=3, support_size=4, seed=11)
    b = p.predict(images[0], ensemble=3, support_size=4, seed=11)
    c = p.predict(images[0], ensemble=3, support_size=4, seed=12)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    assert not np.allclose(a.probabilities, c.probabilities)
    refs = [
        _reference_probs(model, images[0], support.subset(idx)) for idx in support.ensemble_indices(3, 4, seed=11)
    ]
    mean = F.interpolate(torch.stack(refs).mean(0), size=(60, 70), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(a.probabilities, mean[0, 0].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="support_size"):
        p.predict(images[0], support_size=9)


def test_flips_average_flipped_predictions(model):
    images, masks = _support()
    support = SupportSet.from_arrays(images, masks, size=(32, 32))
    pred = Predictor(model).set_support(support).predict(images[0], flips=True)
    x = preprocess_image(images[0], (32, 32))[None]
    outs = []
    for dims in [(), (-1,), (-2,), (-2, -1)]:
        f = (lambda t: t.flip(dims)) if dims else (lambda t: t)
        with torch.no_grad():
            y = torch.sigmoid(model(f(x), f(support.images)[None], f(support.masks)[None]))
        outs.append(f(y))
    ref = F.interpolate(torch.stack(outs).mean(0), size=(60, 70), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(pred.probabilities, ref[0, 0].numpy(), atol=1e-5)


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS is read from /proc (Linux only)")
def test_256_example_support_set_runs_in_bounded_memory():
    torch.manual_seed(0)
    # tiny widths at the full 128x128 input: one unchunked pass over 256 supports needs ~400 MB
    rec = Recorder(create_model("universeg-tiny", input_size=(128, 128)).eval())
    g = torch.Generator().manual_seed(0)
    support = SupportSet(
        torch.rand(256, 1, 128, 128, generator=g), (torch.rand(256, 1, 128, 128, generator=g) > 0.5).float()
    )
    p = Predictor(rec, support_chunk=32, max_pairs=64).set_support(support)
    targets = np.random.default_rng(0).random((2, 1, 100, 90))  # (N, 1, H, W): two targets
    base = peak = _rss()
    running = True

    def poll():
        nonlocal peak
        while running:
            peak = max(peak, _rss())
            time.sleep(0.0005)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        pred = p.predict(targets)
    finally:
        running = False
        thread.join()
    peak = max(peak, _rss())
    assert pred.mask.shape == (2, 100, 90)
    assert max(s for _, s in rec.calls) == 32 and max(b * s for b, s in rec.calls) <= 64
    assert sum(b * s for b, s in rec.calls) == 256 * 2  # every example seen once per target
    assert (peak - base) / 2**20 < 250, f"peak RSS grew by {(peak - base) / 2**20:.0f} MiB"


def test_chunks_are_weighted_mean_over_partition(model):
    images, masks = _support(n=10)
    support = SupportSet.from_arrays(images, masks, size=(32, 32))
    pred = Predictor(model, support_chunk=4).set_support(support).predict(images[0])
    parts = np.array_split(np.arange(10), 3)  # 4, 3, 3
    refs = [_reference_probs(model, images[0], support.subset(c.tolist())) * len(c) for c in parts]
    ref = F.interpolate(torch.stack(refs).sum(0) / 10, size=(60, 70), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(pred.probabilities, ref[0, 0].numpy(), atol=1e-5)


def test_fixed_shape_compiled_model_gets_its_shapes(model):
    images, masks = _support(n=8)
    rec = Recorder(model, support_size=4, batch_size=2)
    p = Predictor(rec).set_support(SupportSet.from_arrays(images, masks, size=(32, 32)))
    pred = p.predict(images[:3])
    assert pred.mask.shape == (3, 60, 70)
    assert {c for c in rec.calls} == {(2, 4)}
    with pytest.raises(ValueError, match="multiple"):
        p.predict(images[0], support_size=6)


def test_predict_volume_matches_slices(model):
    images, masks = _support()
    p = Predictor(model).set_support(SupportSet.from_arrays(images, masks, size=(32, 32)))
    vol = np.random.default_rng(0).random((20, 7, 30))
    out = p.predict_volume(vol, axis=1)
    assert out.mask.shape == vol.shape and out.probabilities.shape == vol.shape
    np.testing.assert_allclose(out.probabilities[:, 3, :], p.predict(vol[:, 3, :]).probabilities, atol=1e-5)


def test_segment_convenience_and_named_model(model, caplog):
    images, masks = _support()
    pred = segment(images[0], images[1:], masks[1:], model=model, ensemble=2, support_size=3)
    assert pred.mask.shape == (60, 70)
    with caplog.at_level("WARNING"):
        p = Predictor("universeg-tiny", pretrained=False)  # a name without weights: random, said out loud
    assert "randomly initialised" in caplog.text and p.input_size == (32, 32)
    with pytest.raises(ValueError, match="'universeg-tiny' has no pretrained weights.*pretrained=False"):
        Predictor("universeg-tiny")
    with pytest.raises(TypeError, match="unexpected keyword"):
        segment(images[0], images[1:], masks[1:], model=model, ensembel=2)
    with pytest.raises(TypeError, match="SupportSet"):
        Predictor(model).set_support((images, masks))


def test_predict_file_writes_the_same_kind_of_file(model, tmp_path):
    import nibabel as nib
    from PIL import Image

    images, masks = _support(shape=(45, 61))
    p = Predictor(model).set_support(SupportSet.from_arrays(images, masks, size=(32, 32)))
    Image.fromarray(images[0]).save(tmp_path / "rgb.png")
    pred = p.predict_file(tmp_path / "rgb.png")  # default: <stem>_mask.png beside the input
    assert pred.path == tmp_path / "rgb_mask.png"
    np.testing.assert_array_equal(np.asarray(Image.open(pred.path)), p.predict(images[0]).mask)

    gray = np.random.default_rng(0).random((50, 40))
    np.save(tmp_path / "gray.npy", gray)
    pred = p.predict_file(tmp_path / "gray.npy", tmp_path / "out" / "gray.png", probabilities_path=tmp_path / "p.npy")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "gray.png")), p.predict(gray).mask)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), p.predict(gray).probabilities)

    vol = np.random.default_rng(1).random((20, 7, 30))
    np.save(tmp_path / "vol.npy", vol)
    pred = p.predict_file(tmp_path / "vol.npy", tmp_path / "out" / "vol.npy", axis=1)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "vol.npy"), p.predict_volume(vol, axis=1).mask)

    affine = np.diag([0.7, 0.8, 3.0, 1.0])
    affine[:3, 3] = [10, -20, 5]
    for shape in [(30, 26, 5), (30, 26, 1)]:  # a volume, and a 2D image stored as NIfTI
        data = (np.random.default_rng(2).random(shape) * 400).astype(np.int16)
        img = nib.Nifti1Image(data, affine)
        img.header["descrip"] = b"predict_file"
        nib.save(img, tmp_path / "scan.nii.gz")
        pred = p.predict_file(tmp_path / "scan.nii.gz", tmp_path / "out" / "scan.nii.gz")
        out = nib.load(pred.path)
        assert out.shape == shape and np.dtype(out.get_data_dtype()).kind == "u"
        np.testing.assert_allclose(out.affine, affine)
        assert out.header["descrip"] == img.header["descrip"]
        expected = p.predict_volume(data).mask if shape[-1] > 1 else p.predict(data[..., 0]).mask[..., None]
        np.testing.assert_array_equal(np.asarray(out.dataobj), expected)
    assert sorted(q.name for q in (tmp_path / "out").iterdir()) == ["gray.png", "scan.nii.gz", "vol.npy"]
