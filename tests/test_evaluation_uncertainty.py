"""evaluate --samples K: the uncertainty table beside the single prediction; the scoring against hand values."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from task_folders import make_task

from universeg_plus import create_model
from universeg_plus.cli import main
from universeg_plus.evaluation.uncertainty import ImageSamples, score_images, target_checks, uncertainty_rows
from universeg_plus.uncertainty import Calibration, ModelCalibration


def _image(task="t", s=4, truth=None, single=None, mean=None, dice_each=(1.0, 0.5)):
    truth = np.zeros((20, 20), bool) if truth is None else truth
    single = truth.astype(np.float32) if single is None else single
    mean = single if mean is None else mean
    return ImageSamples(task, s, 0, truth, single, mean, np.zeros_like(single), list(dice_each), 0.1, 0.8)


def test_score_images_reference_values():
    truth = np.zeros((20, 20), bool)
    truth[5:15, 5:15] = True
    perfect = _image(truth=truth)
    half = truth.astype(np.float32) * 0.6  # right mask, underconfident inside
    off = np.zeros((20, 20), np.float32)
    off[5:15, 10:20] = 0.9  # half the object, and 50 false pixels
    images = [perfect, _image(truth=truth, single=half), _image(truth=truth, single=off, dice_each=(0.5, 0.2))]
    out = score_images(images)
    assert out["single"]["dice"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert out["samples"]["best_dice"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert out["samples"]["mean_dice"] == pytest.approx((0.75 + 0.75 + 0.35) / 3)
    assert out["single"]["seconds"] == pytest.approx(0.1) and out["samples"]["seconds"] == pytest.approx(0.8)
    # relevant pixels: the 100 true ones of each image plus the 50 false positives of the third
    # bins: p=1 (100 px, all fg), p=0.6 (100 px, all fg), p=0.9 (100 px, 50 fg), p=0 (50 fg px of image 3)
    expected_ece = (100 * 0 + 100 * 0.4 + 100 * 0.4 + 50 * 1.0) / 350
    assert out["single"]["ece_relevant"] == pytest.approx(expected_ece)
    assert 0.0 <= out["single"]["auroc_band"] <= 1.0
    calibrated = score_images(images, Calibration(0.5), Calibration(0.5))
    assert calibrated["single"]["dice"] == out["single"]["dice"]  # masks are the model's
    assert calibrated["single"]["ece_relevant"] != out["single"]["ece_relevant"]


def test_targets_are_judged_met_or_missed():
    truth = np.zeros((20, 20), bool)
    truth[5:15, 5:15] = True
    rows = uncertainty_rows([_image(truth=truth, s=s) for s in (4, 16) for _ in range(3)], 2)
    assert [r["support_size"] for r in rows] == [4, 4, 16, 16, "all", "all"]
    checks = target_checks(rows)
    best = [c for c in checks if c["metric"] == "best_dice - single dice"]
    assert best and all(not c["met"] and c["value"] == pytest.approx(0.0) for c in best)  # +0.10 needed
    assert all(c["met"] for c in checks if c["metric"] == "ece_relevant")  # perfect probabilities


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("tasks")
    make_task(r, "alpha", n=6, labels=1, seed=1)
    return r


def test_evaluate_samples_writes_the_uncertainty_report(root, tmp_path, capsys):
    from universeg_plus.hub import save_pretrained

    torch.manual_seed(0)
    weights = tmp_path / "w"
    save_pretrained(create_model("universeg-tiny"), weights)
    ModelCalibration(Calibration(0.5), Calibration(0.6)).save(weights)
    args = ["evaluate", "--model", "universeg-tiny", "--weights", str(weights), "--data-root", str(root),
            "--tasks", "alpha", "--support-sizes", "2", "--targets", "2", "--ensemble", "1", "--no-progress",
            "--samples", "3", "--out", str(tmp_path / "out")]
    assert main(args) == 0
    printed = capsys.readouterr().out
    with open(tmp_path / "out" / "uncertainty.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["support_size"], r["method"]) for r in rows] == [("2", "single"), ("2", "K=3")]
    assert 0.0 <= float(rows[1]["best_dice"]) <= 1.0 and float(rows[1]["best_dice"]) >= float(rows[1]["mean_dice"])
    md = (tmp_path / "out" / "uncertainty.md").read_text()
    assert "calibration: stored with the weights" in md and "--samples 3" in md and "Targets (issue 28)" in md
    assert "| ECE relevant |" in printed
    with open(tmp_path / "out" / "uncertainty_per_image.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 2
    assert main([*args[:-2], "--samples", "1", "--out", str(tmp_path / "x")]) == 2
