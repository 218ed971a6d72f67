import numpy as np
import pytest
import torch
from PIL import Image

from universeg_plus.support import SupportSet, prepare_mask, preprocess_image

SIZE = (32, 32)


def _pairs(n=6, shape=(40, 50), seed=0, labels=(1,)):
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for i in range(n):
        images.append(rng.random(shape).astype(np.float32) * 200 + 10)
        m = np.zeros(shape, np.uint8)
        lab = labels[i % len(labels)]
        m[5 + i : 20 + i, 10:30] = lab
        masks.append(m)
    return images, masks


# ---------------------------------------------------------------- preprocessing
def test_preprocess_luminance_minmax_and_resize():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 100
    rgb[0, 0] = (255, 255, 255)
    out = preprocess_image(rgb, (4, 6))
    assert out.shape == (1, 4, 6) and out.dtype == torch.float32
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    ref = (luma - luma.min()) / (luma.max() - luma.min())
    np.testing.assert_allclose(out[0].numpy(), ref, atol=1e-6)
    big = preprocess_image(np.arange(173 * 211, dtype=np.float64).reshape(173, 211), SIZE)
    assert big.shape == (1, *SIZE) and float(big.min()) >= 0 and float(big.max()) <= 1


def test_preprocess_constant_image_is_zero_and_inputs_agree():
    assert float(preprocess_image(np.full((9, 9), 7.0), SIZE).abs().max()) == 0.0
    arr = np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    a = preprocess_image(arr, SIZE)
    b = preprocess_image(Image.fromarray(arr), SIZE)
    c = preprocess_image(torch.from_numpy(arr).permute(2, 0, 1), SIZE)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_area_mask_resize_majority_and_nearest():
    lab = np.zeros((8, 8), np.int64)
    lab[:, :5] = 2  # 5 of 8 columns
    out = prepare_mask(lab, (2, 2), "area")
    np.testing.assert_array_equal(out[0].numpy(), [[2, 0], [2, 0]])
    lab2 = np.zeros((4, 4), np.int64)
    lab2[:2, :2] = 1  # exactly half of each 4x4 area cell in 1x2 -> tie goes to background
    np.testing.assert_array_equal(prepare_mask(lab2, (1, 2), "area")[0].numpy(), [[0, 0]])
    near = prepare_mask(lab, (4, 4), "nearest")
    assert set(torch.unique(near).tolist()) <= {0.0, 2.0}


# ---------------------------------------------------------------- construction
def test_from_arrays_shapes_sizes_classes():
    images, masks = _pairs(labels=(1, 3))
    s = SupportSet.from_arrays(images, masks, size=SIZE)
    assert s.images.shape == (6, 1, *SIZE) and s.masks.shape == (6, 1, *SIZE)
    assert s.images.dtype == torch.float32 and float(s.images.min()) >= 0 and float(s.images.max()) <= 1
    assert s.original_sizes == [(40, 50)] * 6
    assert s.classes == [1, 3]
    b = s.binary(3)
    assert b.classes == [1] and len(b) == 6
    assert torch.equal(b.masks, (s.masks == 3).float())
    with pytest.raises(ValueError, match="not in the support set's classes"):
        s.binary(2)


def test_255_masks_read_as_binary_and_stacked_input():
    images, masks = _pairs()
    s = SupportSet.from_arrays(np.stack(images), np.stack([m * 255 for m in masks]), size=SIZE)
    assert s.classes == [1] and s.is_binary


def test_validation_errors(tmp_path):
    images, masks = _pairs(3)
    with pytest.raises(ValueError, match="3 images but 2 masks"):
        SupportSet.from_arrays(images, masks[:2], size=SIZE)
    with pytest.raises(ValueError, match="empty"):
        SupportSet.from_arrays([], [], size=SIZE)
    with pytest.raises(ValueError, match=r"size \(40, 50\).*size \(40, 49\)"):
        SupportSet.from_arrays(images[:1], [masks[0][:, :49]], size=SIZE)
    bad = images[0].copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        SupportSet.from_arrays([bad], masks[:1], size=SIZE)
    inf = images[0].copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        SupportSet.from_arrays([inf], masks[:1], size=SIZE)
    with pytest.raises(ValueError, match="neither binary nor an integer label map"):
        SupportSet.from_arrays(images[:1], [masks[0] * 0.5], size=SIZE)
    with pytest.raises(ValueError, match="negative label"):
        SupportSet.from_arrays(images[:1], [masks[0].astype(np.int64) - 1], size=SIZE)
    with pytest.raises(ValueError, match=r"must be 2D .*\(5, 40, 50\)"):
        SupportSet.from_arrays([np.zeros((5, 40, 50))], masks[:1], size=SIZE)
    with pytest.raises(ValueError, match="single-channel"):
        SupportSet.from_arrays(images[:1], [np.zeros((40, 50, 3), np.uint8)], size=SIZE)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="broken.png"):
        SupportSet.from_paths([broken], [broken], size=SIZE)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        SupportSet.from_paths([tmp_path / "missing.png"], [broken], size=SIZE)
    with pytest.raises(TypeError, match="numpy array, torch tensor, PIL image or file path"):
        SupportSet.from_arrays([object()], masks[:1], size=SIZE)


def test_from_folder_matches_stems(tmp_path):
    images, masks = _pairs(4, labels=(1, 2))
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i, (im, m) in enumerate(zip(images, masks)):
        Image.fromarray(im.astype(np.uint8)).save(tmp_path / "images" / f"case{i}.png")
        np.save(tmp_path / "masks" / f"case{i}.npy", m)
    s = SupportSet.from_folder(tmp_path, size=SIZE)
    assert s.names == [f"case{i}" for i in range(4)]
    assert s.classes == [1, 2]
    (tmp_path / "images" / "extra.png").write_bytes((tmp_path / "images" / "case0.png").read_bytes())
    with pytest.raises(ValueError, match="no partner.*extra"):
        SupportSet.from_folder(tmp_path / "images", tmp_path / "masks", size=SIZE)
    with pytest.raises(FileNotFoundError):
        SupportSet.from_folder(tmp_path / "nope", size=SIZE)


def test_from_volume_takes_foreground_slices():
    rng = np.random.default_rng(0)
    vol = rng.random((30, 24, 10))
    lab = np.zeros(vol.shape, np.uint8)
    lab[5:15, 4:12, 3:8] = 1
    s = SupportSet.from_volume(vol, lab, axis=2, max_slices=None, size=SIZE)
    assert [n.split("_")[-1] for n in s.names] == [f"{k:04d}" for k in range(3, 8)]
    assert s.original_sizes == [(30, 24)] * 5
    s2 = SupportSet.from_volume(vol, lab, axis=0, max_slices=3, size=SIZE)
    assert len(s2) == 3 and s2.original_sizes[0] == (24, 10)
    with pytest.raises(ValueError, match="no slice"):
        SupportSet.from_volume(vol, np.zeros_like(lab), size=SIZE)
    with pytest.raises(ValueError, match="shape"):
        SupportSet.from_volume(vol, lab[:-1], size=SIZE)


# ---------------------------------------------------------------- sampling
def test_sample_random_and_balanced():
    images, masks = _pairs(12, labels=(1, 2, 0, 0))  # label 0 -> empty masks
    s = SupportSet.from_arrays(images, masks, size=SIZE)
    a = s.sample(5, seed=3)
    assert len(set(a.names)) == 5 and a.names == s.sample(5, seed=3).names
    assert a.names != s.sample(5, seed=4).names
    bal = s.sample(4, strategy="balanced", seed=0)
    present = [set(torch.unique(m).tolist()) - {0.0} for m in bal.masks]
    assert all(p for p in present), "balanced sampling should take examples with foreground first"
    assert {1.0, 2.0} <= set().union(*present)
    with pytest.raises(ValueError, match="k must be an integer in 1..12"):
        s.sample(13)
    with pytest.raises(ValueError, match="strategy"):
        s.sample(2, strategy="greedy")


def test_ensembles_distinct_and_deterministic():
    images, masks = _pairs(6)
    s = SupportSet.from_arrays(images, masks, size=SIZE)
    first = [tuple(e.names) for e in s.ensembles(5, 3, seed=7)]
    again = [tuple(e.names) for e in s.ensembles(5, 3, seed=7)]
    assert first == again
    assert len({frozenset(f) for f in first}) == 5
    assert first != [tuple(e.names) for e in s.ensembles(5, 3, seed=8)]
    with pytest.raises(ValueError, match="only 6 different subsets"):
        list(s.ensembles(7, 5))


def test_save_load_round_trip(tmp_path):
    images, masks = _pairs(4, labels=(1, 4))
    s = SupportSet.from_arrays(images, masks, size=SIZE)
    path = s.save(tmp_path / "site.safetensors")
    t = SupportSet.load(path)
    assert torch.equal(t.images, s.images) and torch.equal(t.masks, s.masks)
    assert t.names == s.names and t.original_sizes == s.original_sizes and t.classes == [1, 4]
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 20)
    with pytest.raises(ValueError, match="junk.safetensors"):
        SupportSet.load(junk)


def test_constructor_checks_and_subset():
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        SupportSet(torch.zeros(2, 32, 32), torch.zeros(2, 32, 32))
    with pytest.raises(ValueError, match="empty"):
        SupportSet(torch.zeros(0, 1, 8, 8), torch.zeros(0, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SupportSet(torch.full((1, 1, 8, 8), 2.0), torch.zeros(1, 1, 8, 8))
    s = SupportSet(torch.rand(5, 1, 8, 8), (torch.rand(5, 1, 8, 8) > 0.5).float())
    assert s[1:3].names == ["1", "2"] and s[[4, 0]].names == ["4", "0"]
    r = s.resized((16, 16))
    assert r.images.shape == (5, 1, 16, 16) and set(torch.unique(r.masks).tolist()) <= {0.0, 1.0}


def test_the_colour_projection_travels_with_the_set_and_its_file(tmp_path):
    from universeg_plus.colour import ColourProjection

    proj = ColourProjection("fisher", (0.7, -0.2, -0.1), -0.3, 0.4)
    images, masks = _pairs(3)
    s = SupportSet.from_arrays(images, masks, size=SIZE).with_colour(proj)
    assert s.colour == proj and "colour='fisher'" in repr(s)
    for view in (s[1:], s.binary(), s.resized((16, 16)), s.sample(2), SupportSet.concat([s, s])):
        assert view.colour == proj
    t = SupportSet.load(s.save(tmp_path / "rgb.safetensors"))
    assert t.colour == proj and torch.equal(t.images, s.images)
    grey = SupportSet.from_arrays(images, masks, size=SIZE).save(tmp_path / "grey.safetensors")
    assert SupportSet.load(grey).colour is None
    assert s.with_colour(ColourProjection("luma", (0.299, 0.587, 0.114))).colour is None  # the input rules' own
    with pytest.raises(ValueError, match="different colour projections"):
        SupportSet.concat([s, s.with_colour(None)])
    with pytest.raises(TypeError, match="ColourProjection or None, got str"):
        s.with_colour("fisher")
