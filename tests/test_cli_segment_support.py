"""``segment`` as a user meets it (issue 24): --support DIR, masks named ``X_mask.png``, --overlay,
label names from meta.json, the cost printed before the work; all in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch
from PIL import Image


def _task(root, n=4, shape=(40, 48)):
    """A task folder ``root/{images,masks}`` with masks named ``<stem>_mask.png`` and a meta.json."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        m = np.zeros(shape, np.uint8)
        m[4 + 2 * i : 16 + 2 * i, 6:20] = 1
        m[22:34, 26 + i : 40 + i] = 2
        img = (rng.random(shape) * 60 + 120 * (m > 0) + 40 * (m == 2)).astype(np.uint8)
        Image.fromarray(img).save(root / "images" / f"case{i}.png")
        Image.fromarray(m).save(root / "masks" / f"case{i}_mask.png")
    (root / "meta.json").write_text(json.dumps({"labels": {"1": "left lung", "2": "heart"}}))
    return root


def _segment(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "universeg_plus", "segment", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_support_folder_mask_suffix_overlay_label_names_and_cost(tmp_path):
    task = _task(tmp_path / "task")
    target = tmp_path / "scan.png"
    Image.open(task / "images" / "case1.png").save(target)
    out = tmp_path / "out"
    proc = _segment("--support", str(task), "--target", str(target), "--out", str(out), "--overlay",
                    "--ensemble", "2", "--flips", "--model", "universeg-tiny", "--random-weights")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["scan.png", "scan_overlay.png"]
    mask = np.asarray(Image.open(out / "scan.png"))
    overlay = np.asarray(Image.open(out / "scan_overlay.png"))
    assert mask.shape == (40, 48)
    assert overlay.ndim == 3 and overlay.shape[2] == 3 and overlay.shape[1] >= 384  # coloured, enlarged to 384 px
    lines = proc.stdout.splitlines()
    # the labels by their names from meta.json, not label1/label2; the device of the one rule (auto)
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    assert lines[0] == f"support set: 4 examples; labels: 1 left lung, 2 heart; device: {auto}"
    # the cost before the work: 2 subsets x 4 flips x 2 labels
    assert lines[1].startswith("1 target(s), 16 network pass(es) per image"), lines[1]
    assert "2 support subset(s) of 2 x 4 flips x 2 label(s)" in lines[1] and "8x the passes" in lines[1]
    done = next(ln for ln in lines if ln.startswith("scan.png -> "))
    assert "scan_overlay.png" in done and "label " not in done
    assert "1 left lung" in done or "2 heart" in done or "no foreground" in done


def test_support_folder_errors_name_flags(tmp_path):
    task = _task(tmp_path / "task")
    target = task / "images" / "case0.png"
    common = ["--target", str(target), "--out", str(tmp_path / "o"), "--model", "universeg-tiny", "--random-weights"]
    proc = _segment("--support", str(tmp_path / "task" / "images"), *common)
    assert proc.returncode == 2
    assert "--support" in proc.stderr and "must hold images/ and masks/" in proc.stderr
    proc = _segment("--support", str(task), "--support-set", str(tmp_path / "x.safetensors"), *common)
    assert proc.returncode == 2 and "one way" in proc.stderr and "--support and --support-set" in proc.stderr
    assert not (tmp_path / "o").exists()
