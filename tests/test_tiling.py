import math

import numpy as np
import pytest
import torch

from universeg_plus import create_model
from universeg_plus.tiling import (
    TiledSegmenter,
    View,
    blend_windows,
    choose_view,
    fuse,
    gaussian_weights,
    scaled_size,
    window_grid,
    window_starts,
)

WINDOW = (32, 32)  # universeg-tiny's input size


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("universeg-tiny").eval()


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


# ---------------------------------------------------------------------- geometry
@pytest.mark.parametrize("length,window,overlap", [(50, 32, 0.5), (70, 32, 0.0), (33, 32, 0.25), (32, 32, 0.5),
                                                   (200, 32, 0.9), (20, 32, 0.5), (129, 128, 0.5)])
def test_window_starts_cover_the_axis(length, window, overlap):
    starts = window_starts(length, window, overlap)
    assert starts[0] == 0
    if length <= window:
        assert starts == [0]
        return
    assert starts[-1] == length - window
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + window] = True
    assert covered.all()
    stride = max(1, round(window * (1 - overlap)))
    assert max(np.diff(starts)) <= stride
    assert len(starts) == math.ceil((length - window) / stride) + 1  # no more windows than needed


def test_window_grid_covers_the_image():
    size = (75, 50)
    corners = window_grid(size, WINDOW, 0.5)
    covered = np.zeros(size, bool)
    for y, x in corners:
        assert 0 <= y <= size[0] - WINDOW[0] and 0 <= x <= size[1] - WINDOW[1]
        covered[y : y + WINDOW[0], x : x + WINDOW[1]] = True
    assert covered.all()
    assert len(corners) == len(window_starts(75, 32, 0.5)) * len(window_starts(50, 32, 0.5))


def test_scaled_size():
    assert scaled_size((256, 200), 1.0) == (256, 200)
    assert scaled_size((256, 200), 0.5) == (128, 100)
    assert scaled_size((3, 3), 0.1) == (1, 1)
    assert scaled_size((10, 15), 2.0) == (20, 30)


def test_gaussian_weights():
    g = gaussian_weights((32, 16), sigma=0.125)
    assert g.shape == (32, 16) and g.dtype == torch.float32
    assert float(g.max()) == pytest.approx(1.0, abs=1e-6)
    assert float(g.min()) >= 1e-3
    assert torch.equal(g, g.flip(0)) and torch.equal(g, g.flip(1))
    assert float(g[16, 8]) > float(g[2, 8]) > float(g[0, 0])


@pytest.mark.parametrize("size,overlap", [((75, 50), 0.5), ((64, 64), 0.0), ((40, 90), 0.75)])
def test_blending_identical_windows_reproduces_the_map(size, overlap):
    m = torch.rand(*size, generator=torch.Generator().manual_seed(1))
    corners = window_grid(size, WINDOW, overlap)
    windows = torch.stack([m[y : y + 32, x : x + 32] for y, x in corners])
    out = blend_windows(windows, corners, size)
    assert out.shape == size
    assert torch.allclose(out, m, atol=1e-6)


def test_blending_a_padded_window_crops_the_padding():
    m = torch.rand(20, 25, generator=torch.Generator().manual_seed(2))
    padded = torch.nn.functional.pad(m, (0, 7, 0, 12), value=5.0)
    out = blend_windows(padded[None], [(0, 0)], (20, 25))
    assert torch.allclose(out, m, atol=1e-6)


def test_blending_weights_favour_window_centres():
    # two windows overlapping on columns 16..31: there each value is weighted by its distance to its centre
    corners = [(0, 0), (0, 16)]
    windows = torch.stack([torch.zeros(32, 32), torch.ones(32, 32)])
    out = blend_windows(windows, corners, (32, 48))
    assert torch.all(out[:, :16] == 0) and torch.all(out[:, 32:] == 1)
    row = out[16, 16:32]
    assert torch.all(row[1:] >= row[:-1])  # moving from the first window's centre to the second's
    assert float(row[7]) == pytest.approx(1 - float(row[8]), abs=1e-6)  # symmetric about the midpoint


def test_blend_windows_rejects_bad_input():
    with pytest.raises(ValueError, match="N = 2 corners"):
        blend_windows(torch.zeros(3, 32, 32), [(0, 0), (0, 10)], (32, 42))
    with pytest.raises(ValueError, match="do not cover"):
        blend_windows(torch.zeros(1, 32, 32), [(0, 0)], (32, 64))


def test_fuse():
    a, b = np.full((4, 5), 0.2, np.float32), np.full((4, 5), 0.8, np.float32)
    assert np.allclose(fuse([a, b], "mean"), 0.5)
    assert np.allclose(fuse([a, torch.from_numpy(b)], "max"), 0.8)
    assert fuse([a, b]).dtype == np.float32
    with pytest.raises(ValueError, match="one of"):
        fuse([a, b], "median")
    with pytest.raises(ValueError, match="at least 2"):
        fuse([a])
    with pytest.raises(ValueError, match="one shape"):
        fuse([a, np.zeros((5, 4))])


# ---------------------------------------------------------------------- argument checks
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
        ({"max_pairs": 0}, "max_pairs must be a positive integer"),
    ],
)
def test_option_validation(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TiledSegmenter(model, **kwargs)


def test_geometry_validation():
    with pytest.raises(ValueError, match="overlap"):
        window_starts(50, 32, 1.0)
    with pytest.raises(ValueError, match="scale"):
        scaled_size((10, 10), 0)


def test_support_and_call_order_errors(model):
    images, masks = _pairs()
    tiler = TiledSegmenter(model)
    with pytest.raises(RuntimeError, match="set_support"):
        tiler.predict(images[0])
    with pytest.raises(RuntimeError, match="set_support"):
        tiler.predict_global(images[0])
    with pytest.raises(ValueError, match="empty"):
        tiler.set_support([], [])
    with pytest.raises(ValueError, match="3 support images but 2 masks"):
        tiler.set_support(images, masks[:2])
    with pytest.raises(ValueError, match=r"image is \(50, 70\) but its mask is \(50, 60\)"):
        tiler.set_support(images[:1], [masks[0][:, :60]])
    with pytest.raises(ValueError, match="fusion must be one of"):
        tiler.set_support(images, masks).predict_multiscale(images[0], fusion="min")


def test_fixed_support_compiled_models_are_refused(model):
    class Fixed(torch.nn.Module):
        support_size = 8

        def __init__(self):
            super().__init__()
            self.config = model.config

        def forward(self, x, si, sl):
            return model(x, si, sl)

    with pytest.raises(ValueError, match="takes exactly 8"):
        TiledSegmenter(Fixed())


# ---------------------------------------------------------------------- support windows
def test_support_windows_are_balanced(model):
    img = np.zeros((96, 96), np.uint8)
    img[::2] = 40
    mask = np.zeros((96, 96), np.uint8)
    mask[10:14, 10:14] = 1  # foreground only near the top-left corner
    img[mask > 0] = 255

    def counts(fg_fraction, k=4):
        t = TiledSegmenter(model, windows_per_support=k, fg_fraction=fg_fraction).set_support([img], [mask])
        _, m = t.support_windows
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
        t = TiledSegmenter(model, windows_per_support=3, normalize=normalize).set_support(images, masks)
        imgs, labs = t.support_windows
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
    a = TiledSegmenter(model, windows_per_support=2, seed=3).set_support(images, masks)
    b = TiledSegmenter(model, windows_per_support=2, seed=3).set_support(images, masks)
    c = TiledSegmenter(model, windows_per_support=2, seed=4).set_support(images, masks)
    assert torch.equal(a.support_windows[0], b.support_windows[0])
    assert np.array_equal(a.predict(target), b.predict(target))
    assert not torch.equal(a.support_windows[0], c.support_windows[0])


# ---------------------------------------------------------------------- prediction
@pytest.mark.parametrize("shape,scale", [((50, 70), 1.0), ((50, 70), 0.5), ((41, 37), 2.0), ((20, 25), 1.0),
                                         ((32, 32), 1.0), ((64, 96, 3), 0.75)])
def test_predict_shape_and_range(model, shape, scale):
    images, masks = _pairs(shape=(48, 52))
    tiler = TiledSegmenter(model, scale=scale, overlap=0.5, windows_per_support=2).set_support(images, masks)
    rng = np.random.default_rng(0)
    target = (rng.random(shape) * 255).astype(np.uint8)
    for probs in (tiler.predict(target), tiler.predict_global(target), tiler.predict_multiscale(target, "max")):
        assert probs.shape == shape[:2]
        assert probs.dtype == np.float32
        assert np.isfinite(probs).all() and probs.min() >= 0 and probs.max() <= 1


def test_one_window_image_equals_the_global_view(model):
    # image size == window size at scale 1: one target window, support windows = whole supports
    images, masks = _pairs(shape=WINDOW)
    tiler = TiledSegmenter(model, windows_per_support=4).set_support(images, masks)
    assert tiler.support_windows[0].shape[0] == 3
    target = _pairs(1, shape=WINDOW, seed=9)[0][0]
    assert np.allclose(tiler.predict(target), tiler.predict_global(target), atol=1e-6)


def test_image_smaller_than_a_window(model):
    images, masks = _pairs(shape=(20, 25))
    tiler = TiledSegmenter(model, windows_per_support=2).set_support(images, masks)
    imgs, labs = tiler.support_windows
    assert imgs.shape == (3, 1, 32, 32)  # one (padded) window per example
    assert float(imgs[:, :, 20:].abs().max()) == 0 and float(labs[:, :, :, 25:].abs().max()) == 0
    target = images[0]
    probs = tiler.predict(target)
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
    tiler = TiledSegmenter(model, overlap=0.25, windows_per_support=2, normalize=normalize)
    si, sl = tiler.set_support(images, masks).support_windows
    t = torch.from_numpy(target.astype(np.float32))
    x = (t - t.min()) / (t.max() - t.min())
    corners = window_grid((45, 60), WINDOW, 0.25)
    wins = [x[y : y + 32, c : c + 32] for y, c in corners]
    if normalize == "window":
        wins = [(w - w.min()) / (w.max() - w.min()) for w in wins]
    with torch.no_grad():
        probs = torch.cat([torch.sigmoid(model(w[None, None], si[None], sl[None]))[:, 0] for w in wins])
    ref = blend_windows(probs, corners, (45, 60))
    assert np.allclose(tiler.predict(target), ref.numpy(), atol=1e-5)


def test_batching_does_not_change_the_result(model):
    images, masks = _pairs(shape=(60, 80))
    target = _pairs(1, shape=(70, 70), seed=3)[0][0]
    wide = TiledSegmenter(model, windows_per_support=2).set_support(images, masks).predict(target)
    narrow = TiledSegmenter(model, windows_per_support=2, max_pairs=1).set_support(images, masks).predict(target)
    assert np.allclose(wide, narrow, atol=1e-5)
    # support chunks are averaged (an ensemble over a partition): close, not equal
    chunked = TiledSegmenter(model, windows_per_support=2, support_chunk=2).set_support(images, masks)
    assert chunked.predict(target).shape == (70, 70)


def test_fixed_batch_models_get_padded_batches(model):
    class FixedBatch(torch.nn.Module):
        batch_size = 4

        def __init__(self):
            super().__init__()
            self.config = model.config
            self.batches = []

        def forward(self, x, si, sl):
            self.batches.append(x.shape[0])
            return model(x, si, sl)

    images, masks = _pairs(shape=(60, 80))
    target = _pairs(1, shape=(60, 60), seed=3)[0][0]  # 3x3 = 9 windows: batches of 4, 4 and 1 + 3 copies
    fixed = FixedBatch()
    got = TiledSegmenter(fixed, windows_per_support=2).set_support(images, masks).predict(target)
    want = TiledSegmenter(model, windows_per_support=2).set_support(images, masks).predict(target)
    assert fixed.batches == [4, 4, 4]
    assert np.allclose(got, want, atol=1e-5)


def test_multiscale_is_the_fusion_of_both_views(model):
    images, masks = _pairs()
    target = _pairs(1, seed=4)[0][0]
    tiler = TiledSegmenter(model, windows_per_support=2).set_support(images, masks)
    for rule in ("mean", "max"):
        expected = fuse([tiler.predict_global(target), tiler.predict(target)], rule)
        assert np.allclose(tiler.predict_multiscale(target, rule), expected, atol=1e-6)


def test_inputs_of_other_forms(model, tmp_path):
    from universeg_plus.io.images import write_png

    images, masks = _pairs()
    paths = []
    for i, (img, m) in enumerate(zip(images, masks)):
        write_png(tmp_path / f"i{i}.png", img)
        write_png(tmp_path / f"m{i}.png", m * 255)
        paths.append((tmp_path / f"i{i}.png", tmp_path / f"m{i}.png"))
    from_paths = TiledSegmenter(model, windows_per_support=2).set_support([p for p, _ in paths], [m for _, m in paths])
    from_arrays = TiledSegmenter(model, windows_per_support=2).set_support(
        [torch.from_numpy(i) for i in images], [m.astype(bool) for m in masks]
    )
    assert torch.equal(from_paths.support_windows[1], from_arrays.support_windows[1])
    assert torch.allclose(from_paths.support_windows[0], from_arrays.support_windows[0])


# ---------------------------------------------------------------------- views
def test_view_names_and_validation():
    assert View().name == "global"
    assert View(1.0).name == "tiled@1"
    assert View(0.5, "mean").name == "mean@0.5"
    with pytest.raises(ValueError, match="needs a tiled scale"):
        View(None, "max")
    with pytest.raises(ValueError, match="fusion must be one of"):
        View(1.0, "median")
    with pytest.raises(ValueError, match="scale must be in"):
        View(-2.0)


def test_predict_view(model):
    images, masks = _pairs()
    target = _pairs(1, seed=6)[0][0]
    tiler = TiledSegmenter(model, scale=0.5, windows_per_support=2).set_support(images, masks)
    assert np.array_equal(tiler.predict_view(target, View()), tiler.predict_global(target))
    assert np.array_equal(tiler.predict_view(target, View(0.5)), tiler.predict(target))
    assert np.array_equal(tiler.predict_view(target, View(0.5, "max")), tiler.predict_multiscale(target, "max"))
    with pytest.raises(ValueError, match="needs a segmenter at scale 1.0"):
        tiler.predict_view(target, View(1.0))


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
