"""Colour on the user's road: ``Predictor.set_support(..., colour=...)`` fits the projection on the support
set and applies it to every target; grey input is untouched bit for bit; bad values are named; the CLI
``segment --colour auto`` writes a mask in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from single_thread import one_thread  # noqa: F401  (autouse: one torch thread)

from universeg_plus.colour import ColourProjection, fit_projection
from universeg_plus.metrics import dice
from universeg_plus.predictor import Predictor, segment
from universeg_plus.support import SupportSet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_colour import make_task  # noqa: E402  (the benchmark's synthetic colour task: equal luma, other hue)


class Inputs(torch.nn.Module):
    """Wraps a model and keeps the target tensors ``(B, 1, H, W)`` it was given."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.config, self.targets = inner, inner.config, []

    def forward(self, x, si, sl):
        self.targets.append(x.detach().clone())
        return self.inner(x, si, sl)


def _contrast(images: torch.Tensor, masks: torch.Tensor) -> float:
    """Foreground minus background mean over the background's spread, pooled over ``(N, 1, H, W)``."""
    fg, bg = images[masks > 0.5], images[masks <= 0.5]
    return float((fg.mean() - bg.mean()) / bg.std())


def test_fisher_support_and_targets_separate_what_luma_cannot(model):
    images, masks = make_task(5, n=48, seed=0)
    seen = Inputs(model)
    predictor = Predictor(seen)
    luma = predictor.set_support(images[:4], masks[:4]).support
    assert predictor.colour.name == "luma"
    fisher = predictor.set_support(images[:4], masks[:4], colour="fisher").support
    assert predictor.colour.name == "fisher" and predictor.colour_scores == {}
    assert abs(_contrast(luma.images, luma.masks)) < 1.0 < 2.0 < _contrast(fisher.images, fisher.masks)
    pred = predictor.predict(images[4])
    assert pred.colour == "fisher" and pred.mask.shape == (48, 48)
    # the target met the network projected as the support was: its structure stands out the same way
    target = seen.targets[-1][0, 0]
    m = SupportSet.from_arrays([images[4][..., 0]], [masks[4]], tuple(target.shape)).masks[0, 0]
    assert _contrast(target[None], m[None]) > 2.0


def test_trained_model_segments_a_hue_task_luma_cannot():
    """universeg-small, S=4, 4 targets of the synthetic task: Fisher and the leave-one-out choice far ahead of luma."""
    images, masks = make_task(8, n=64, seed=0)
    predictor = Predictor("universeg-small", device="cpu")
    scores = {}
    for colour in ("luma", "fisher", "auto"):
        predictor.set_support(images[:4], masks[:4], colour=colour)
        preds = predictor.predict_many(images[4:])
        scores[colour] = float(np.mean([dice(torch.from_numpy(p.mask > 0), torch.from_numpy(m > 0))
                                        for p, m in zip(preds, masks[4:])]))
        assert {p.colour for p in preds} == {predictor.colour.name}
    assert scores["fisher"] > scores["luma"] + 0.3, scores
    assert scores["auto"] > scores["luma"] + 0.2, scores
    assert predictor.colour.name != "luma"
    assert set(predictor.colour_scores) == {"luma", "red", "green", "blue", "fisher"}
    assert preds[0].colour_scores == predictor.colour_scores


def test_grey_input_is_unchanged_bit_for_bit(model):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 44), dtype=np.uint8) for _ in range(4)]
    masks = [(im > 128).astype(np.uint8) for im in images]
    target = rng.integers(0, 255, (40, 44), dtype=np.uint8)
    size = Predictor(model).input_size
    before = Predictor(model).set_support(SupportSet.from_arrays(images[:3], masks[:3], size)).predict(target)
    assert np.array_equal(Predictor(model).set_support(images[:3], masks[:3]).predict(target).probabilities,
                          before.probabilities)
    for colour in ("luma", "auto"):
        predictor = Predictor(model).set_support(images[:3], masks[:3], colour=colour)
        pred = predictor.predict(target)
        assert np.array_equal(pred.probabilities, before.probabilities), colour
        assert np.array_equal(pred.mask, before.mask) and pred.colour == "luma" and pred.colour_scores == {}
        assert predictor.colour_scores == {}
    via_segment = segment(target, images[:3], masks[:3], model, colour="auto")
    assert np.array_equal(via_segment.probabilities, before.probabilities)


def test_rgb_with_luma_is_as_before(model):
    images, masks = make_task(4, n=40, seed=3)
    size = Predictor(model).input_size
    before = Predictor(model).set_support(SupportSet.from_arrays(images[:3], masks[:3], size)).predict(images[3])
    pred = Predictor(model).set_support(images[:3], masks[:3], colour="luma").predict(images[3])
    assert np.array_equal(pred.probabilities, before.probabilities) and pred.colour == "luma"


def test_a_projection_goes_with_a_prepared_support_set(model):
    images, masks = make_task(4, n=40, seed=4)
    proj = fit_projection(images[:3], masks[:3])
    direct = Predictor(model).set_support(images[:3], masks[:3], colour=proj).predict(images[3])
    prepared = SupportSet.from_arrays([proj(im) for im in images[:3]], masks[:3], Predictor(model).input_size)
    by_hand = Predictor(model).set_support(prepared, colour=proj).predict(images[3])
    np.testing.assert_allclose(direct.probabilities, by_hand.probabilities, atol=1e-6)
    assert direct.colour == by_hand.colour == "fisher"
    batch = Predictor(model).set_support(images[:3], masks[:3], colour=proj).predict(images[2:4])
    assert batch.colour == "fisher" and batch.mask.shape == (2, 40, 40)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda p, i, m: p.set_support(i, m, colour="hsv"), ValueError, ["'luma', 'fisher', 'auto'", "'hsv'"]),
        (lambda p, i, m: p.set_support(i, m, colour=None), TypeError, ["ColourProjection", "NoneType"]),
        (lambda p, i, m: p.set_support(SupportSet.from_arrays(i, m), colour="fisher"), ValueError,
         ["SupportSet holds them", "set_support(images, masks, colour='fisher')"]),
        (lambda p, i, m: p.set_support([i[0][..., 0], *i[1:]], m, colour="fisher"), ValueError,
         ["support image 0 is grayscale", "1 of 3"]),
        (lambda p, i, m: p.set_support([i[0][..., 0], *i[1:]], m, colour="auto"), ValueError, ["grayscale"]),
        (lambda p, i, m: p.set_support(i, m, colour="fisher").predict(i[0][..., 1]), ValueError,
         ["target is grayscale", "projected from colour (fisher)"]),
        (lambda p, i, m: ColourProjection("fisher", (1.0, float("nan"), 0.0)), ValueError, ["finite"]),
        (lambda p, i, m: ColourProjection("hue", (1.0, 0.0, 0.0)), ValueError, ["'luma'", "'hue'"]),
        (lambda p, i, m: ColourProjection("red", (1.0, 0.0, 0.0), 1.0, 1.0), ValueError, ["high > low"]),
    ],
    ids=["unknown", "not-a-name", "support-set", "grey-example", "mixed-auto", "grey-target", "nan", "name", "range"],
)
def test_bad_colour_values_are_named(model, call, error, words):
    images, masks = make_task(3, n=32, seed=5)
    with pytest.raises(error) as exc:
        call(Predictor(model), images, masks)
    for w in words:
        assert w in str(exc.value), str(exc.value)


def test_cli_segment_colour_auto_writes_a_mask(tmp_path):
    images, masks = make_task(4, n=40, seed=6)
    for sub in ("images", "masks", "targets"):
        (tmp_path / sub).mkdir()
    for k in range(3):
        Image.fromarray(images[k]).save(tmp_path / "images" / f"ex{k}.png")
        Image.fromarray(masks[k] * 255).save(tmp_path / "masks" / f"ex{k}.png")
    Image.fromarray(images[3]).save(tmp_path / "targets" / "photo.png")
    proc = subprocess.run(
        [sys.executable, "-m", "universeg_plus", "segment", "--support", str(tmp_path), "--target",
         str(tmp_path / "targets"), "--out", str(tmp_path / "out"), "--model", "universeg-tiny", "--random-weights",
         "--colour", "auto"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "colour: " in proc.stdout and "leave-one-out Dice on the support set: luma " in proc.stdout, proc.stdout
    mask = np.asarray(Image.open(tmp_path / "out" / "photo.png"))
    assert mask.shape == (40, 40) and set(np.unique(mask)) <= {0, 1}
    bad = subprocess.run(
        [sys.executable, "-m", "universeg_plus", "segment", "--support-set", str(tmp_path / "x.safetensors"),
         "--target", str(tmp_path / "targets"), "--out", str(tmp_path / "o2"), "--colour", "fisher"],
        capture_output=True, text=True, timeout=300,
    )
    assert bad.returncode == 2 and "--colour fisher learns from the support images in colour" in bad.stderr, bad.stderr
    assert not (tmp_path / "o2").exists()


def test_the_colour_of_a_grey_session_carries_over_as_luma(model):
    """``predictor.colour`` of one session given to another: luma stays the input rules' luma (grey targets fine)."""
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (32, 32), dtype=np.uint8) for _ in range(3)]
    masks = [(im > 128).astype(np.uint8) for im in images]
    first = Predictor(model).set_support(images[:2], masks[:2])
    second = Predictor(model).set_support(images[:2], masks[:2], colour=first.colour)
    assert np.array_equal(second.predict(images[2]).probabilities, first.predict(images[2]).probabilities)


def test_a_saved_support_set_projects_targets_as_before_saving(model, tmp_path):
    images, masks = make_task(4, n=40, seed=8)
    first = Predictor(model).set_support(images[:3], masks[:3], colour="fisher")
    path = first.support.save(tmp_path / "task.safetensors")
    again = Predictor(model).set_support(SupportSet.load(path))
    assert again.colour == first.colour and again.colour.name == "fisher"
    np.testing.assert_array_equal(again.predict(images[3]).probabilities, first.predict(images[3]).probabilities)
    other = fit_projection(images[1:3], masks[1:3])
    with pytest.raises(ValueError, match="made grey by the fisher projection"):
        Predictor(model).set_support(SupportSet.load(path), colour=other)
    proc = subprocess.run(  # the CLI: a --support-set file brings its projection
        [sys.executable, "-m", "universeg_plus", "segment", "--support-set", str(path), "--target",
         str(_save(tmp_path / "t.png", images[3])), "--out", str(tmp_path / "out"), "--model", "universeg-tiny",
         "--random-weights"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0 and "colour: fisher" in proc.stdout, proc.stderr[-3000:]


def _save(path: Path, image: np.ndarray) -> Path:
    Image.fromarray(image).save(path)
    return path
