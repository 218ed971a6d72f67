"""universeg_plus.methods: every method fitted to a support set, the leave-one-out choice (auto) within a
time budget, and the per-label cache. Tiny model, 32x32 images, few training steps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from single_thread import one_thread  # noqa: F401  (autouse: one torch thread)
from test_adapt import _support  # noqa: E402  (noisy images, one bright square each; the mask is the square)

from universeg_plus import create_model
from universeg_plus.adapt import AdaptConfig
from universeg_plus.metrics import dice
from universeg_plus.methods import (
    CHOICES,
    METHODS,
    MethodFits,
    MethodSettings,
    check_method,
    choose_method,
    fit_method,
)
from universeg_plus.predictor import Predictor
from universeg_plus.support import SupportSet
from universeg_plus.supervised import BaselineConfig

FAST = MethodSettings(adapt=AdaptConfig(steps=4, crop=None), unet=BaselineConfig(steps=20, width=4, depth=3))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("universeg-tiny").eval()


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_probabilities(model, method) -> None:
    images, masks = _support(5)
    fitted = fit_method(method, model, images, masks, FAST, seed=0)
    probs = fitted(images[:2])
    assert probs.shape == (2, 1, 32, 32) and probs.dtype == torch.float32
    assert float(probs.min()) >= 0.0 and float(probs.max()) <= 1.0
    assert (fitted.seconds > 0) == (method in ("adapt", "unet", "adapt+unet"))


def test_unet_learns_the_support_set(model) -> None:
    images, masks = _support(6)
    net = fit_method("unet", model, images, masks, MethodSettings(unet=BaselineConfig(steps=120, width=4, depth=3)))
    held, held_masks = _support(3, seed=9)
    d = dice(net(held)[:, 0] > 0.5, held_masks[:, 0] > 0.5).mean()
    assert float(d) > 0.6, f"a U-Net trained on bright squares should find one (Dice {float(d):.3f})"


def test_adapt_plus_unet_is_the_mean_of_its_parts(model) -> None:
    images, masks = _support(5)
    both = fit_method("adapt+unet", model, images, masks, FAST, seed=0)
    x = images[:2]
    expected = 0.5 * (both.parts["adapt"](x) + both.parts["unet"](x))
    torch.testing.assert_close(both(x), expected, atol=1e-6, rtol=0)


def test_auto_scores_every_candidate_without_a_budget(model) -> None:
    images, masks = _support(5)
    choice = choose_method(model, images, masks, folds=3, settings=FAST, seed=0)
    assert set(choice.scores) == set(METHODS) and len(choice.folds) == 3 and not choice.skipped
    assert choice.method == max(choice.scores, key=lambda m: (choice.scores[m], -METHODS.index(m)))
    assert all(0.0 <= s <= 1.0 for s in choice.scores.values())
    # the scores are leave-one-out Dice: recompute one by hand
    i = choice.folds[0]
    keep = [j for j in range(5) if j != i]
    p = fit_method("incontext", model, images[keep], masks[keep])(images[i : i + 1])[0, 0] > 0.5
    assert choice.fold_dice["incontext"][0] == pytest.approx(float(dice(p, masks[i, 0] > 0.5)), abs=1e-6)


def test_auto_within_a_tight_budget_skips_the_trained_methods(model) -> None:
    images, masks = _support(5)
    slow = MethodSettings(adapt=AdaptConfig(steps=100_000), unet=BaselineConfig(steps=100_000))
    choice = choose_method(model, images, masks, time_budget_s=5.0, folds=2, settings=slow)
    assert set(choice.scores) == {"incontext", "ensemble"}
    assert set(choice.skipped) == {"adapt", "unet", "adapt+unet"} and "budget" in choice.skipped["unet"]
    assert choice.method in ("incontext", "ensemble") and choice.seconds < 5.0


def test_auto_with_one_example_falls_back(model) -> None:
    images, masks = _support(1)
    assert choose_method(model, images, masks, settings=FAST).method == "adapt"
    slow = MethodSettings(adapt=AdaptConfig(steps=100_000))
    assert choose_method(model, images, masks, settings=slow, time_budget_s=2.0).method == "incontext"


def test_method_fits_trains_once_per_label(model) -> None:
    images, masks = _support(5)
    fits = MethodFits(model, FAST, folds=2)
    a, _ = fits.probabilities(1, images, masks, images[:1], "unet")
    unet = fits.fitted[1]["unet"]
    b, _ = fits.probabilities(1, images, masks, images[1:3], "unet")
    assert fits.fitted[1]["unet"] is unet and a.shape == (1, 1, 32, 32) and b.shape == (2, 1, 32, 32)
    p, choice = fits.probabilities(1, images, masks, images[:1], "auto", time_budget_s=600)
    assert choice is not None and choice.method in METHODS and fits.choose(1, images, masks, 600) is choice


def test_bad_method_arguments(model) -> None:
    assert check_method("auto", 30) == ("auto", 30.0) and set(CHOICES) == {"auto", *METHODS}
    with pytest.raises(ValueError, match="method must be one of"):
        check_method("best")
    with pytest.raises(TypeError, match="time_budget_s"):
        check_method("auto", "10")
    with pytest.raises(ValueError, match="time_budget_s"):
        check_method("auto", 0)
    images, masks = _support(3)
    with pytest.raises(ValueError, match="candidates"):
        choose_method(model, images, masks, candidates=("unet", "magic"))
    with pytest.raises(ValueError, match="method must be one of"):
        fit_method("magic", model, images, masks)


# ---------------------------------------------------------------- through the Predictor and the CLI
def _arrays(n: int = 5, size: int = 40, labels: tuple[int, ...] = (1,)):
    rng = np.random.default_rng(0)
    images, masks = [], []
    for i in range(n):
        img = rng.random((size, size)) * 40
        m = np.zeros((size, size), np.uint8)
        for j, lab in enumerate(labels):
            m[4 + 2 * i + 14 * j : 14 + 2 * i + 14 * j, 6 + 3 * i : 18 + 3 * i] = lab
        img[m > 0] += 180
        images.append(img.astype(np.uint8))
        masks.append(m)
    return images, masks


def test_predictor_unet_method_is_the_fitted_unet_at_the_image_size(model) -> None:
    from universeg_plus.io.inputs import probabilities_to_size, standardize_image

    images, masks = _arrays()
    predictor = Predictor(model).set_support(SupportSet.from_arrays(images, masks, (32, 32)))
    predictor.method_settings = FAST
    pred = predictor.predict(images[0], method="unet")
    assert pred.method == "unet" and pred.method_scores == {} and pred.probabilities.shape == (40, 40)
    # the same U-Net (same settings and seed) applied by hand gives the same map
    sup = predictor.support
    net = fit_method("unet", model, sup.images, (sup.masks == 1).float(), FAST, seed=0)
    x = standardize_image(torch.from_numpy(images[0].astype(np.float32)), (32, 32))[None, None]
    expected = probabilities_to_size(net(x)[:, 0], (40, 40))
    np.testing.assert_allclose(pred.probabilities, expected[0], atol=1e-5)
    fitted = predictor._fits.fitted[1]["unet"]
    predictor.predict_many(images[1:3], method="unet")
    assert predictor._fits.fitted[1]["unet"] is fitted  # trained once for the support set
    predictor.set_support(SupportSet.from_arrays(images[:3], masks[:3], (32, 32)))
    assert predictor._fits is None  # a new support set: nothing kept


def test_predictor_auto_reports_its_choice_per_label(model) -> None:
    images, masks = _arrays(3, labels=(1, 2))  # 3 examples: 3 leave-one-out folds per label
    predictor = Predictor(model).set_support(SupportSet.from_arrays(images, masks, (32, 32)))
    predictor.method_settings = FAST
    pred = predictor.predict(images[0], method="auto", time_budget_s=300)
    assert pred.probabilities.shape == (2, 40, 40) and pred.mask.shape == (40, 40)
    labels = {k.split(":")[0] for k in pred.method_scores}
    assert labels == {"1", "2"} and all(0 <= v <= 1 for v in pred.method_scores.values())
    chosen = [p.split(":")[1] for p in pred.method.split(", ")] if ":" in pred.method else [pred.method]
    assert set(chosen) <= set(METHODS)


def test_predictor_method_errors(model) -> None:
    images, masks = _arrays(3)
    predictor = Predictor(model).set_support(SupportSet.from_arrays(images, masks, (32, 32)))
    with pytest.raises(ValueError, match="method must be one of"):
        predictor.predict(images[0], method="best")
    with pytest.raises(ValueError, match="apply to method='incontext'"):
        predictor.predict(images[0], method="unet", ensemble=2)
    with pytest.raises(TypeError, match="time_budget_s"):
        predictor.predict(images[0], method="auto", time_budget_s="1 min")
    assert predictor.predict(images[0]).method == "incontext"


def test_segment_cli_method_auto_in_a_fresh_process(tmp_path) -> None:
    images, masks = _arrays(4)
    for d in ("im", "ma"):
        (tmp_path / d).mkdir()
    for i, (im, m) in enumerate(zip(images, masks)):
        Image.fromarray(im).save(tmp_path / "im" / f"e{i}.png")
        Image.fromarray(m).save(tmp_path / "ma" / f"e{i}.png")
    common = [sys.executable, "-m", "universeg_plus", "segment", "--support-images", str(tmp_path / "im"),
              "--support-masks", str(tmp_path / "ma"), "--target", str(tmp_path / "im" / "e0.png"),
              "--model", "universeg-tiny", "--random-weights"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    # a budget too small for any training: auto chooses among the in-context methods
    proc = subprocess.run([*common, "--out", str(tmp_path / "o"), "--method", "auto", "--time-budget", "0.5"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert np.asarray(Image.open(tmp_path / "o" / "e0.png")).shape == (40, 40)
