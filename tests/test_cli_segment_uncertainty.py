"""``segment --samples K --uncertainty`` in a fresh process: the map (.npy + PNG heat map), samples, regions."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _write_support(root, n=4, shape=(45, 61)):
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        img = (rng.random(shape) * 60).astype(np.uint8)
        m = np.zeros(shape, np.uint8)
        m[5 + 3 * i : 25 + 3 * i, 8:30] = 1
        img[m > 0] += 150
        Image.fromarray(img).save(root / "images" / f"ex{i}.png")
        Image.fromarray(m).save(root / "masks" / f"ex{i}.png")


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "universeg_plus", "segment", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def test_segment_writes_uncertainty_map_samples_and_regions(tmp_path):
    _write_support(tmp_path / "sup")
    target = tmp_path / "scan.png"
    Image.open(tmp_path / "sup" / "images" / "ex1.png").save(target)
    out = tmp_path / "out"
    common = ["--support-images", str(tmp_path / "sup" / "images"), "--support-masks", str(tmp_path / "sup" / "masks"),
              "--target", str(target), "--model", "universeg-tiny", "--random-weights"]
    run = _cli(*common, "--out", str(out), "--samples", "3", "--uncertainty", "--seed", "4")
    assert run.returncode == 0, run.stderr
    unc = np.load(out / "scan_uncertainty.npy")
    samples = np.load(out / "scan_samples.npy")
    mask = np.asarray(Image.open(out / "scan.png"))
    heat = np.asarray(Image.open(out / "scan_uncertainty.png"))
    info = json.loads((out / "scan_regions.json").read_text())
    assert unc.shape == mask.shape == (45, 61) and unc.dtype == np.float32
    assert 0.0 <= unc.min() and unc.max() <= 1.0
    assert samples.shape == (3, 45, 61) and heat.shape == (45, 61, 3)
    assert info["samples"] == 3 and 0.0 <= info["uncertainty_score"] <= 1.0
    assert all(set(r) >= {"rank", "area", "bbox", "score"} for r in info["regions"])
    refused = _cli(*common, "--out", str(tmp_path / "no"), "--uncertainty")
    assert refused.returncode == 2 and "--uncertainty needs --samples" in refused.stderr
    assert not (tmp_path / "no").exists()
