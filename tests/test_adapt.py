"""Support-set adaptation: a changed copy, an untouched original, seeded determinism, parts, checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from single_thread import one_thread  # noqa: F401  (autouse: one torch thread)

from universeg_plus import create_model, list_models
from universeg_plus.adapt import (
    AdaptConfig,
    WindowEpisodes,
    adapt_model,
    adapt_on_windows,
    in_context_probabilities,
    trainable_parameters,
)
from universeg_plus.inferers import Resize, Tiles
from universeg_plus.predictor import Predictor
from universeg_plus.support import SupportSet


def _support(n: int = 4, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy images with one bright square each; the mask is the square."""
    g = torch.Generator().manual_seed(seed)
    images = 0.3 * torch.rand(n, 1, size, size, generator=g)
    masks = torch.zeros(n, 1, size, size)
    for i in range(n):
        y, x = torch.randint(0, size - 10, (2,), generator=g).tolist()
        masks[i, :, y : y + 10, x : x + 10] = 1
        images[i, :, y : y + 10, x : x + 10] += 0.6
    return images, masks


def _state(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Names of the tensors that are exactly equal."""
    return [k for k in a if torch.equal(a[k], b[k])]


def test_adapted_copy_changes_and_original_does_not(model) -> None:
    images, masks = _support()
    before = _state(model)
    adapted = adapt_model(model, images, masks, steps=3, lr=1e-2, seed=0, progress=False)
    assert adapted is not model and not adapted.training
    assert _equal(before, _state(model)) == list(before)  # original untouched
    changed = set(before) - set(_equal(before, _state(adapted)))
    assert changed, "3 steps at lr 1e-2 changed no weight"
    # the original keeps its gradient flags, and holds no gradients after adaptation
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


def test_same_seed_same_weights(model) -> None:
    images, masks = _support()
    a = adapt_model(model, images, masks, steps=2, lr=1e-2, seed=7, progress=False)
    b = adapt_model(model, images, masks, steps=2, lr=1e-2, seed=7, progress=False)
    c = adapt_model(model, images, masks, steps=2, lr=1e-2, seed=8, progress=False)
    sa, sb, sc = _state(a), _state(b), _state(c)
    assert _equal(sa, sb) == list(sa)
    assert len(_equal(sa, sc)) < len(sa)


@pytest.mark.parametrize("parts", ["decoder", "encoder", "last"])
def test_parts_tune_only_their_parameters(model, parts) -> None:
    images, masks = _support()
    chosen = {n for n, _ in trainable_parameters(model, parts)}
    adapted = adapt_model(model, images, masks, steps=2, lr=1e-2, parts=parts, progress=False)
    before, after = _state(model), _state(adapted)
    changed = set(before) - set(_equal(before, after))
    assert changed and changed <= chosen, (parts, sorted(changed - chosen))
    prefix = {"decoder": ("dec_blocks.", "out_conv."), "encoder": ("enc_blocks.",)}.get(parts)
    if prefix:
        assert all(n.startswith(prefix) for n in chosen)


def test_zero_steps_is_an_unchanged_copy(model) -> None:
    images, masks = _support()
    same = adapt_model(model, images, masks, steps=0, progress=False)
    assert same is not model and _equal(_state(model), _state(same)) == list(_state(model))


def test_one_example_and_lower_resolution(model) -> None:
    images, masks = _support(n=1, size=64)
    adapted = adapt_model(model, images, masks, steps=2, lr=1e-2, size=(32, 32), progress=False)
    assert len(_equal(_state(model), _state(adapted))) < len(_state(model))


def test_reset_predictor_returns_to_the_original(model) -> None:
    """What ``Predictor.reset()`` relies on: the original model predicts as before adaptation."""
    images, masks = _support(n=5)
    arrays = [im[0].numpy() for im in images]
    support = SupportSet.from_arrays(arrays[:4], [m[0].numpy() > 0.5 for m in masks[:4]], size=(32, 32))
    original = Predictor(model).set_support(support).predict(arrays[4]).probabilities
    adapted = adapt_model(model, support.images, support.masks, steps=3, lr=1e-2, progress=False)
    tuned = Predictor(adapted).set_support(support).predict(arrays[4]).probabilities
    again = Predictor(model).set_support(support).predict(arrays[4]).probabilities
    np.testing.assert_array_equal(again, original)
    assert np.abs(tuned - original).max() > 1e-4


@pytest.mark.parametrize("name", list_models())
def test_every_variant_adapts(name) -> None:
    """One step on a tiny support set (32x32 is a valid size for every conv-only variant)."""
    torch.manual_seed(0)
    m = create_model(name)
    images, masks = _support(n=2)
    adapted = adapt_model(m, images, masks, steps=1, lr=1e-2, batch_size=1, progress=False)
    assert len(_equal(_state(m), _state(adapted))) < len(_state(m))


def test_bad_arguments(model) -> None:
    images, masks = _support()
    with pytest.raises(TypeError, match="torch module"):
        adapt_model(lambda *a: a[0], images, masks)
    with pytest.raises(TypeError, match="torch tensors"):
        adapt_model(model, images.numpy(), masks)
    with pytest.raises(ValueError, match=r"\(S, 1, H, W\)"):
        adapt_model(model, images[:, 0], masks[:, 0])
    with pytest.raises(ValueError, match="must match"):
        adapt_model(model, images, masks[:2])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        adapt_model(model, images * 3, masks)
    with pytest.raises(ValueError, match="binary"):
        adapt_model(model, images, masks * 0.5)
    with pytest.raises(ValueError, match="divisible by 4"):
        adapt_model(model, images[..., :30, :30], masks[..., :30, :30])
    with pytest.raises(ValueError, match="parts"):
        adapt_model(model, images, masks, parts="head")
    with pytest.raises(ValueError, match="steps"):
        adapt_model(model, images, masks, steps=-1)
    with pytest.raises(ValueError, match="learning_rate|extra"):
        adapt_model(model, images, masks, learning_rate=0.1)
    with pytest.raises(ValueError, match="size"):
        AdaptConfig(size=(30, 0))


def test_in_context_probabilities_leave_out(model) -> None:
    images, masks = _support(n=3)
    p = in_context_probabilities(model, images, images, masks, leave_out=True, batch_size=2)
    assert p.shape == (3, 1, 32, 32) and 0 <= float(p.min()) and float(p.max()) <= 1
    with torch.no_grad():
        ref = torch.sigmoid(model(images[1:2], images[[0, 2]][None], masks[[0, 2]][None]))
    torch.testing.assert_close(p[1:2], ref, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="leave_out"):
        in_context_probabilities(model, images[:2], images, masks, leave_out=True)


# ---------------------------------------------------------------- Predictor.adapt / reset
def _arrays(n: int = 5, size: int = 32) -> tuple[list[np.ndarray], list[np.ndarray]]:
    images, masks = _support(n=n, size=size)
    return [im[0].numpy() for im in images], [m[0].numpy().astype(np.uint8) for m in masks]


def test_predictor_adapt_then_reset(model) -> None:
    images, masks = _arrays()
    support = SupportSet.from_arrays(images[:4], masks[:4], size=(32, 32))
    predictor = Predictor(model).set_support(support)
    before = _state(model)
    original = predictor.predict(images[4]).probabilities
    assert predictor.adapt(steps=3, lr=1e-2, progress=False) is predictor and predictor.adapted
    tuned = predictor.predict(images[4]).probabilities
    assert np.abs(tuned - original).max() > 1e-4
    # the same adaptation through the function gives the same map (evaluate's rows rely on it)
    direct = adapt_model(model, support.images, support.masks, steps=3, lr=1e-2, seed=0, progress=False)
    np.testing.assert_allclose(Predictor(direct).set_support(support).predict(images[4]).probabilities, tuned, atol=1e-6)
    assert _equal(before, _state(model)) == list(before)  # the Predictor's model is never changed
    assert not predictor.reset().adapted
    np.testing.assert_array_equal(predictor.predict(images[4]).probabilities, original)


def test_new_support_set_drops_the_adapted_copy(model) -> None:
    images, masks = _arrays()
    predictor = Predictor(model).set_support(SupportSet.from_arrays(images[:4], masks[:4], size=(32, 32)))
    predictor.adapt(steps=1, progress=False)
    assert predictor.adapted
    predictor.set_support(SupportSet.from_arrays(images[1:], masks[1:], size=(32, 32)))
    assert not predictor.adapted


def test_multi_label_support_adapts_one_copy_per_label(model) -> None:
    images, masks = _arrays()
    labels = [m.copy() for m in masks]
    for m in labels[::2]:
        m[:4, :4] = 2  # a second label in some examples
    predictor = Predictor(model).set_support(SupportSet.from_arrays(images[:4], labels[:4], size=(32, 32)))
    predictor.adapt(steps=1, progress=False)
    assert sorted(predictor._adapted) == [1, 2]
    pred = predictor.predict(images[4])
    assert pred.probabilities.shape == (2, 32, 32) and pred.classes == [1, 2]


def test_predictor_adapt_errors(model) -> None:
    with pytest.raises(RuntimeError, match="set_support"):
        Predictor(model).adapt(steps=1)
    images, masks = _arrays()
    predictor = Predictor(model).set_support(SupportSet.from_arrays(images[:4], masks[:4], size=(32, 32)))
    with pytest.raises(ValueError, match="steps"):
        predictor.adapt(steps=-1)
    with pytest.raises(ValueError, match="extra|learning_rate"):
        predictor.adapt(learning_rate=0.1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        predictor.adapt(steps=1, seed=1.5)
    assert not predictor.adapted  # nothing half-adapted after a refused call

    class Compiled:  # what a compiled model looks like to the Predictor: callable with a config, no parameters
        config = model.config

        def __call__(self, *a):
            return model(*a)

    compiled = Predictor(Compiled()).set_support(SupportSet.from_arrays(images[:4], masks[:4], size=(32, 32)))
    with pytest.raises(TypeError, match="eager torch model"):
        compiled.adapt(steps=1)


# ---------------------------------------------------------------- adaptation on native-scale windows
def _thin(n: int = 4, shape: tuple[int, int] = (48, 80)) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """uint8 images of 1-pixel columns alternating dark/bright (gone after any 2x downsampling) with a
    bright 2-pixel-wide vertical line (the foreground), and its masks."""
    images, masks = [], []
    for i in range(n):
        img = np.zeros(shape, np.uint8)
        img[:, ::2] = 90
        m = np.zeros(shape, np.uint8)
        m[4 + i : 40 + i, 12 + 13 * i : 14 + 13 * i] = 1
        img[m > 0] = 255
        images.append(img)
        masks.append(m)
    return images, masks


def _recorded(model: torch.nn.Module, run) -> list[torch.Tensor]:
    """The targets every forward pass of ``model`` (and of its deep copies) saw while ``run()`` ran."""
    seen: list[torch.Tensor] = []
    handle = model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    try:
        out = run()
    finally:
        handle.remove()
    for m in out if isinstance(out, (list, tuple)) else [out]:
        m._forward_pre_hooks.clear()  # the adapted copy carries the hook
    return seen


def test_adaptation_on_windows_trains_on_native_scale_windows(model) -> None:
    images, masks = _thin()
    tiles = Tiles(windows_per_support=2)
    before = _state(model)
    predictor = Predictor(model, inferer=tiles).set_support(images, masks)
    episodes = tiles.episodes(predictor._support_data, 1, (32, 32))
    opts = dict(steps=2, lr=1e-2, batch_size=2, augment=False, crop=None, progress=False)
    native = _recorded(model, lambda: adapt_on_windows(model, episodes, seed=0, **opts))
    resized = _recorded(model, lambda: adapt_model(model, predictor.support.images, predictor.support.masks, **opts))
    assert len(native) == len(resized) == 2 and native[0].shape == resized[0].shape == (2, 1, 32, 32)
    # the 1-pixel columns reach the network only from native-scale windows
    contrast = [float((t[..., 1:] - t[..., :-1]).abs().mean()) for t in native + resized]
    assert min(contrast[:2]) > 0.25 and max(contrast[2:]) < 0.1, contrast
    adapted = adapt_on_windows(model, episodes, seed=0, **opts)
    assert len(_equal(before, _state(adapted))) < len(before)  # weights changed
    assert _equal(before, _state(model)) == list(before)  # the original untouched
    again = adapt_on_windows(model, episodes, seed=0, **opts)
    other = adapt_on_windows(model, episodes, seed=1, **opts)
    assert _equal(_state(adapted), _state(again)) == list(before)
    assert len(_equal(_state(adapted), _state(other))) < len(before)


def test_tiled_prediction_uses_the_copy_adapted_on_windows(model) -> None:
    images, masks = _thin(5)
    tiles = Tiles(windows_per_support=2)
    opts = dict(steps=3, lr=1e-2, seed=0, crop=16, batch_size=2, progress=False)
    predictor = Predictor(model, inferer=tiles).set_support(images[:4], masks[:4])
    plain = predictor.predict(images[4]).probabilities
    tuned = predictor.adapt(**opts).predict(images[4]).probabilities  # default: the Predictor's inferer
    assert predictor.adapted and np.abs(tuned - plain).max() > 1e-4
    # the same copy built by hand: adapt_on_windows on the Tiles episodes, then a fresh tiled Predictor
    seed = opts.pop("seed")
    direct = adapt_on_windows(model, tiles.episodes(predictor._support_data, 1, (32, 32)), seed=seed, **opts)
    by_hand = Predictor(direct, inferer=tiles).set_support(images[:4], masks[:4]).predict(images[4]).probabilities
    np.testing.assert_allclose(tuned, by_hand, atol=1e-6)
    # inferer= on adapt() of a whole-image Predictor gives that copy too; Resize() adapts another one
    whole = Predictor(model).set_support(images[:4], masks[:4]).adapt(inferer=tiles, seed=seed, **opts)
    np.testing.assert_allclose(whole.predict(images[4], inferer=tiles).probabilities, tuned, atol=1e-6)
    on_resized = Predictor(model, inferer=tiles).set_support(images[:4], masks[:4])
    on_resized.adapt(inferer=Resize(), seed=seed, **opts)
    assert np.abs(on_resized.predict(images[4]).probabilities - tuned).max() > 1e-4
    np.testing.assert_array_equal(predictor.reset().predict(images[4]).probabilities, plain)


def test_adaptation_on_windows_errors(model) -> None:
    images, masks = _thin()
    prepared = Predictor(model).set_support(SupportSet.from_arrays(images, masks, size=(32, 32)))
    with pytest.raises(ValueError, match=r"set_support\(images, masks\)"):
        prepared.adapt(steps=1, inferer=Tiles(), progress=False)
    with pytest.raises(TypeError, match="inferer must be Resize\\(\\), Tiles\\(...\\) or another Inferer, got str"):
        prepared.adapt(steps=1, inferer="tiles")
    native = Predictor(model).set_support(images, masks)
    with pytest.raises(ValueError, match="window episodes keep the tiled scale"):
        native.adapt(steps=1, inferer=Tiles(), size=(32, 32), progress=False)
    with pytest.raises(ValueError, match="crop must be divisible by 4, got 30"):
        native.adapt(steps=1, inferer=Tiles(), crop=30, progress=False)
    assert not prepared.adapted and not native.adapted
    episodes = Tiles().episodes(native._support_data, 1, (32, 32))
    with pytest.raises(TypeError, match="episodes must be WindowEpisodes .* got tuple"):
        adapt_on_windows(model, (images, masks))
    with pytest.raises(TypeError, match="torch module"):
        adapt_on_windows(lambda *a: a[0], episodes)
    odd = WindowEpisodes([torch.zeros(40, 40)], [torch.zeros(40, 40, dtype=torch.bool)], (30, 30))
    with pytest.raises(ValueError, match=r"window \(30, 30\) must be divisible by 4"):
        adapt_on_windows(model, odd)
