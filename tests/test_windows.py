import math

import numpy as np
import pytest
import torch

from universeg_plus.windows import (
    EPISODE_OVERLAP,
    View,
    WindowEpisodes,
    blend_windows,
    fuse,
    gaussian_weights,
    scaled_size,
    window_grid,
    window_starts,
)

WINDOW = (32, 32)  # universeg-tiny's input size


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


def test_geometry_validation():
    with pytest.raises(ValueError, match="overlap"):
        window_starts(50, 32, 1.0)
    with pytest.raises(ValueError, match="scale"):
        scaled_size((10, 10), 0)


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


# ---------------------------------------------------------------------- adaptation episodes
def _striped(shape=(48, 80), seed=0):
    """An image of 1-pixel columns alternating 0/1 (erased by any 2x downsampling) and a 1-pixel-wide
    vertical line of foreground, as float32 / bool tensors."""
    h, w = shape
    img = torch.zeros(h, w)
    img[:, ::2] = 1.0
    fg = torch.zeros(h, w, dtype=torch.bool)
    x = 10 + 7 * seed
    fg[5:40, x] = True
    return img, fg


def test_window_episodes_are_native_scale_windows_of_the_examples():
    pairs = [_striped(seed=s) for s in range(3)]
    eps = WindowEpisodes([p[0] for p in pairs], [p[1] for p in pairs], WINDOW, normalize="image")
    imgs, masks = eps.draw(torch.tensor([[0, 1, 2], [2, 0, 1]]), torch.Generator().manual_seed(0))
    assert imgs.shape == masks.shape == (2, 3, 1, 32, 32) and imgs.dtype == masks.dtype == torch.float32
    index = [[0, 1, 2], [2, 0, 1]]
    for b in range(2):
        for n in range(3):
            src, fg = pairs[index[b][n]]
            found = [(y, x) for y, x in window_grid(src.shape, WINDOW, EPISODE_OVERLAP)
                     if torch.equal(masks[b, n, 0], fg[y : y + 32, x : x + 32].float())
                     and torch.equal(imgs[b, n, 0], src[y : y + 32, x : x + 32])]
            assert found, f"episode {b} entry {n} is not a native-scale window of example {index[b][n]}"
    # the 1-pixel stripes and line survive at scale 1; at scale 0.5 the stripes are averaged away
    assert bool((imgs[..., 1:] != imgs[..., :-1]).all())
    half = WindowEpisodes([p[0] for p in pairs], [p[1] for p in pairs], WINDOW, scale=0.5, normalize="image")
    h_imgs, _ = half.draw(torch.tensor([[0, 1]]), torch.Generator().manual_seed(0))
    assert float((h_imgs[..., 1:] != h_imgs[..., :-1]).float().mean()) < 0.1


@pytest.mark.parametrize("fg_fraction, expected", [(1.0, True), (0.0, False)])
def test_window_episodes_foreground_share(fg_fraction, expected):
    pairs = [_striped(seed=s) for s in range(2)]
    eps = WindowEpisodes([p[0] for p in pairs], [p[1] for p in pairs], WINDOW, fg_fraction=fg_fraction)
    _, masks = eps.draw(torch.zeros(20, 1, dtype=torch.long), torch.Generator().manual_seed(1))
    assert [bool(m.any()) for m in masks[:, 0]] == [expected] * 20


def test_window_episodes_are_seeded_and_pad_small_examples():
    img, fg = _striped((20, 24))
    eps = WindowEpisodes([img], [fg], WINDOW)
    a = eps.draw(torch.zeros(3, 2, dtype=torch.long), torch.Generator().manual_seed(5))
    b = eps.draw(torch.zeros(3, 2, dtype=torch.long), torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == (3, 2, 1, 32, 32) and float(a[0][..., 20:, :].abs().sum()) == 0.0  # zero padding
    assert len(eps) == 1


def test_window_episodes_reject_bad_input():
    img, fg = _striped()
    with pytest.raises(ValueError, match="as many foregrounds as images"):
        WindowEpisodes([img, img], [fg], WINDOW)
    with pytest.raises(ValueError, match="as many foregrounds as images"):
        WindowEpisodes([], [], WINDOW)
    with pytest.raises(ValueError, match=r"example 0: image \(48, 80\) and foreground \(48, 79\)"):
        WindowEpisodes([img], [fg[:, :-1]], WINDOW)
    with pytest.raises(ValueError, match="scale must be in"):
        WindowEpisodes([img], [fg], WINDOW, scale=9.0)
    with pytest.raises(ValueError, match="fg_fraction must be in"):
        WindowEpisodes([img], [fg], WINDOW, fg_fraction=1.5)
    with pytest.raises(ValueError, match="normalize must be one of"):
        WindowEpisodes([img], [fg], WINDOW, normalize="none")
