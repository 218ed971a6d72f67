"""The inferers through the Predictor: Tiles (windows at native resolution), Resize, Slices."""

import numpy as np
import pytest
import torch

from universeg_plus.inferers import Resize, Slices, Tiles
from universeg_plus.predictor import Predictor
from universeg_plus.windows import blend_windows, fuse, window_grid

WINDOW = (32, 32)  # universeg-tiny's input size


def _pairs(n=3, shape=(50, 70), seed=0):
    """Images with a bright square (the foreground) in a noisy background, uint8, and their masks."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for i in range(n):
        img = rng.random(shape) * 60
        m = np.zeros(shape, np.uint8)
        m[3 + i : 12 + i, 4 : 14] = 1
        img[m > 0] += 150
        images.append(img.astype(np.uint8))
        masks.append(m)
    return images, masks


def _tiled(model, images, masks, predictor_kwargs=None, **tiles):
    return Predictor(model, inferer=Tiles(**tiles), **(predictor_kwargs or {})).set_support(images, masks)


def _windows(predictor, label=1):
    """The support windows the Tiles inferer cuts for ``label``: images and masks ``(K, 1, 32, 32)``."""
    return predictor.inferer.prepare(predictor._support_data, label, WINDOW)["windows"]


def _probs(predictor, target, inferer=None):
    return predictor.predict(target, inferer=inferer).probabilities


# ---------------------------------------------------------------------- options
@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"scale": 0.0}, "scale must be in"),
        ({"scale": -1.0}, "scale must be in"),
        ({"scale": 100.0}, "scale must be in"),
        ({"scale": float("nan")}, "scale must be a finite number"),
        ({"scale": True}, "scale must be a finite number"),
        ({"overlap": 1.0}, r"overlap must be .* in \[0, 1\)"),
        ({"overlap": -0.1}, r"overlap must be .* in \[0, 1\)"),
        ({"windows_per_support": 0}, "windows_per_support must be a positive integer"),
        ({"windows_per_support": 2.5}, "windows_per_support must be a positive integer"),
        ({"fg_fraction": 1.5}, r"fg_fraction must be in \[0, 1\]"),
        ({"normalize": "volume"}, "normalize must be one of"),
        ({"sigma": 0.0}, "sigma must be a positive"),
        ({"fusion": "min"}, "fusion must be one of"),
    ],
)
def test_tiles_option_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Tiles(**kwargs)


def test_tiles_are_frozen_and_hashable():
    t = Tiles(scale=0.5)
    assert t == Tiles(scale=0.5) and hash(t) == hash(Tiles(scale=0.5)) and t != Tiles()
    with pytest.raises(AttributeError):
        t.scale = 1.0  # type: ignore[misc]


def test_support_and_call_order_errors(model):
    images, masks = _pairs()
    p = Predictor(model, inferer=Tiles())
    with pytest.raises(RuntimeError, match="set_support"):
        p.predict(images[0])
    with pytest.raises(ValueError, match="empty"):
        p.set_support([], [])
    with pytest.raises(ValueError, match="3 images but 2 masks"):
        p.set_support(images, masks[:2])
    with pytest.raises(ValueError, match=r"is 50x70 pixels but its mask #0 is 50x60 pixels"):
        p.set_support(images[:1], [masks[0][:, :60]])
    from universeg_plus.support import SupportSet

    p.set_support(SupportSet.from_arrays(images, masks, size=WINDOW))
    with pytest.raises(ValueError, match="set_support\\(images, masks\\)"):
        p.predict(images[0])
    p.set_support(images, masks)
    with pytest.raises(ValueError, match="ensemble and support_size apply to the Resize inferer"):
        p.predict(images[0], ensemble=2)
    with pytest.raises(TypeError, match="inferer must be"):
        Predictor(model, inferer="tiles")


class Compiled(torch.nn.Module):
    """A stand-in for a compiled model with fixed shapes (``support_size`` / ``batch_size``) that records batches."""

    def __init__(self, inner, **fixed):
        super().__init__()
        self.inner, self.config, self.batches = inner, inner.config, []
        for name, value in fixed.items():
            setattr(self, name, value)

    def forward(self, x, si, sl):
        self.batches.append(x.shape[0])
        return self.inner(x, si, sl)


def test_fixed_support_compiled_models_are_refused(model):
    images, masks = _pairs()
    with pytest.raises(ValueError, match="takes exactly 8"):
        _tiled(Compiled(model, support_size=8), images, masks).predict(images[0])


# ---------------------------------------------------------------------- support windows
def test_support_windows_are_balanced(model):
    img = np.zeros((96, 96), np.uint8)
    img[::2] = 40
    mask = np.zeros((96, 96), np.uint8)
    mask[10:14, 10:14] = 1  # foreground only near the top-left corner
    img[mask > 0] = 255

    def counts(fg_fraction, k=4):
        _, m = _windows(_tiled(model, [img], [mask], windows_per_support=k, fg_fraction=fg_fraction))
        with_fg = int((m.flatten(1).amax(1) > 0).sum())
        return with_fg, m.shape[0] - with_fg

    # 3/4-overlap grid of a 96x96 image: 9x9 corners (stride 8), 2x2 of them contain the square
    assert counts(0.5) == (2, 2)
    assert counts(1.0) == (4, 0)
    assert counts(0.0) == (0, 4)
    assert counts(1.0, k=6) == (4, 2)  # only 4 windows have foreground: topped up with background ones


def test_support_windows_shapes_ranges_and_normalization(model):
    images, masks = _pairs(shape=(60, 45))
    for normalize in ("image", "window"):
        imgs, labs = _windows(_tiled(model, images, masks, windows_per_support=3, normalize=normalize))
        assert imgs.shape == labs.shape == (9, 1, 32, 32)
        assert imgs.dtype == labs.dtype == torch.float32
        assert float(imgs.min()) >= 0 and float(imgs.max()) <= 1
        assert set(torch.unique(labs).tolist()) <= {0.0, 1.0}
        if normalize == "window":
            assert torch.allclose(imgs.flatten(1).amin(1), torch.zeros(9))
            assert torch.allclose(imgs.flatten(1).amax(1), torch.ones(9))


def test_seeded_determinism(model):
    images, masks = _pairs(shape=(90, 100))
    target = _pairs(1, shape=(70, 80), seed=5)[0][0]
    a = _tiled(model, images, masks, windows_per_support=2, seed=3)
    b = _tiled(model, images, masks, windows_per_support=2, seed=3)
    c = _tiled(model, images, masks, windows_per_support=2, seed=4)
    assert torch.equal(_windows(a)[0], _windows(b)[0])
    assert np.array_equal(_probs(a, target), _probs(b, target))
    assert not torch.equal(_windows(a)[0], _windows(c)[0])


def test_inputs_of_other_forms(model, tmp_path):
    from universeg_plus.io.images import write_png

    images, masks = _pairs()
    paths = []
    for i, (img, m) in enumerate(zip(images, masks)):
        write_png(tmp_path / f"i{i}.png", img)
        write_png(tmp_path / f"m{i}.png", m * 255)
        paths.append((tmp_path / f"i{i}.png", tmp_path / f"m{i}.png"))
    from_paths = _tiled(model, [p for p, _ in paths], [m for _, m in paths], windows_per_support=2)
    from_arrays = _tiled(model, [torch.from_numpy(i) for i in images], [m.astype(bool) for m in masks],
                         windows_per_support=2)
    assert torch.equal(_windows(from_paths)[1], _windows(from_arrays)[1])
    assert torch.allclose(_windows(from_paths)[0], _windows(from_arrays)[0])


# ---------------------------------------------------------------------- prediction
@pytest.mark.parametrize("shape,scale", [((50, 70), 1.0), ((50, 70), 0.5), ((41, 37), 2.0), ((20, 25), 1.0),
                                         ((32, 32), 1.0), ((64, 96, 3), 0.75)])
def test_predict_shape_and_range(model, shape, scale):
    images, masks = _pairs(shape=(48, 52))
    p = _tiled(model, images, masks, scale=scale, overlap=0.5, windows_per_support=2)
    rng = np.random.default_rng(0)
    target = (rng.random(shape) * 255).astype(np.uint8)
    for inferer in (None, Resize(), Tiles(scale=scale, windows_per_support=2, fusion="max")):
        pred = p.predict(target, inferer=inferer)
        probs = pred.probabilities
        assert probs.shape == pred.mask.shape == shape[:2]
        assert probs.dtype == np.float32
        assert np.isfinite(probs).all() and probs.min() >= 0 and probs.max() <= 1
        np.testing.assert_array_equal(pred.mask, (probs > 0.5).astype(np.uint8))


def test_one_window_image_equals_the_global_view(model):
    # image size == window size at scale 1: one target window, support windows = whole supports
    images, masks = _pairs(shape=WINDOW)
    p = _tiled(model, images, masks, windows_per_support=4)
    assert _windows(p)[0].shape[0] == 3
    target = _pairs(1, shape=WINDOW, seed=9)[0][0]
    assert np.allclose(_probs(p, target), _probs(p, target, Resize()), atol=1e-6)


def test_image_smaller_than_a_window(model):
    images, masks = _pairs(shape=(20, 25))
    p = _tiled(model, images, masks, windows_per_support=2)
    imgs, labs = _windows(p)
    assert imgs.shape == (3, 1, 32, 32)  # one (padded) window per example
    assert float(imgs[:, :, 20:].abs().max()) == 0 and float(labs[:, :, :, 25:].abs().max()) == 0
    target = images[0]
    probs = _probs(p, target)
    assert probs.shape == (20, 25)
    # reference: the padded image through the network directly, cropped
    x = torch.zeros(1, 1, 32, 32)
    t = torch.from_numpy(target.astype(np.float32))
    x[0, 0, :20, :25] = (t - t.min()) / (t.max() - t.min())
    with torch.no_grad():
        ref = torch.sigmoid(model(x, imgs[None], labs[None]))[0, 0, :20, :25]
    assert np.allclose(probs, ref.numpy(), atol=1e-5)


@pytest.mark.parametrize("normalize", ["image", "window"])
def test_predict_matches_an_independent_window_loop(model, normalize):
    images, masks = _pairs(shape=(50, 70))
    target = _pairs(1, shape=(45, 60), seed=7)[0][0]
    p = _tiled(model, images, masks, overlap=0.25, windows_per_support=2, normalize=normalize)
    si, sl = _windows(p)
    t = torch.from_numpy(target.astype(np.float32))
    x = (t - t.min()) / (t.max() - t.min())
    corners = window_grid((45, 60), WINDOW, 0.25)
    wins = [x[y : y + 32, c : c + 32] for y, c in corners]
    if normalize == "window":
        wins = [(w - w.min()) / (w.max() - w.min()) for w in wins]
    with torch.no_grad():
        probs = torch.cat([torch.sigmoid(model(w[None, None], si[None], sl[None]))[:, 0] for w in wins])
    ref = blend_windows(probs, corners, (45, 60))
    assert np.allclose(_probs(p, target), ref.numpy(), atol=1e-5)


def test_batching_does_not_change_the_result(model):
    images, masks = _pairs(shape=(60, 80))
    target = _pairs(1, shape=(70, 70), seed=3)[0][0]
    wide = _probs(_tiled(model, images, masks, windows_per_support=2), target)
    narrow = _probs(_tiled(model, images, masks, {"max_pairs": 1}, windows_per_support=2), target)
    assert np.allclose(wide, narrow, atol=1e-5)
    # support chunks are averaged (an ensemble over a partition): close, not equal
    chunked = _tiled(model, images, masks, {"support_chunk": 2}, windows_per_support=2)
    assert _probs(chunked, target).shape == (70, 70)


def test_fixed_batch_models_get_padded_batches(model):
    images, masks = _pairs(shape=(60, 80))
    target = _pairs(1, shape=(60, 60), seed=3)[0][0]  # 3x3 = 9 windows: batches of 4, 4 and 1 + 3 copies
    fixed = Compiled(model, batch_size=4)
    got = _probs(_tiled(fixed, images, masks, windows_per_support=2), target)
    want = _probs(_tiled(model, images, masks, windows_per_support=2), target)
    assert fixed.batches == [4, 4, 4]
    assert np.allclose(got, want, atol=1e-5)


def test_fusion_is_the_fusion_of_both_views(model):
    images, masks = _pairs()
    target = _pairs(1, seed=4)[0][0]
    p = _tiled(model, images, masks, windows_per_support=2)
    for rule in ("mean", "max"):
        expected = fuse([_probs(p, target, Resize()), _probs(p, target)], rule)
        got = _probs(p, target, Tiles(windows_per_support=2, fusion=rule))
        assert np.allclose(got, expected, atol=1e-6)


def test_tiles_segment_several_labels_one_vs_rest(model):
    images, masks = _pairs(shape=(50, 70))
    for m in masks:
        m[30:40, 40:55] = 2
    p = _tiled(model, images, masks, windows_per_support=2)
    pred = p.predict(images[0])
    assert pred.classes == [1, 2] and pred.probabilities.shape == (2, 50, 70)
    for k, c in enumerate((1, 2)):
        alone = _tiled(model, images, [(m == c).astype(np.uint8) for m in masks], windows_per_support=2)
        np.testing.assert_allclose(pred.probabilities[k], _probs(alone, images[0]), atol=1e-6)


def test_tiles_combine_with_adaptation_and_flips(model):
    images, masks = _pairs(shape=(40, 50))
    target = _pairs(1, shape=(40, 50), seed=8)[0][0]
    p = _tiled(model, images, masks, windows_per_support=2)
    plain = _probs(p, target)
    flipped = p.predict(target, flips=True).probabilities
    assert np.abs(flipped - plain).max() > 1e-4
    p.adapt(steps=2, crop=32, batch_size=2, progress=False)
    adapted = _probs(p, target)
    assert adapted.shape == (40, 50) and np.abs(adapted - plain).max() > 1e-4
    np.testing.assert_array_equal(_probs(p.reset(), target), plain)


def test_slices_cover_a_volume_with_tiles(model):
    images, masks = _pairs(shape=(40, 50))
    vol = np.stack([_pairs(1, shape=(40, 50), seed=s)[0][0] for s in range(3)], axis=-1).astype(np.float32)
    p = _tiled(model, images, masks, windows_per_support=2)
    pred = p.predict(vol, inferer=Slices(2, Tiles(windows_per_support=2)))
    assert pred.probabilities.shape == pred.mask.shape == (40, 50, 3)
    np.testing.assert_allclose(pred.probabilities[..., 1], _probs(p, vol[..., 1]), atol=1e-6)
    np.testing.assert_array_equal(p.predict_volume(vol).probabilities, pred.probabilities)
    with pytest.raises(ValueError, match="axis must be"):
        Slices(3)
    with pytest.raises(TypeError, match="2D inferer"):
        Slices(0, Slices(1))
