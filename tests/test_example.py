import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from universeg_plus.cli import main
from universeg_plus.io.images import label_colour

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"
TASKS = ["dsb2018_nuclei_crops", "mni152_coronal_tissue"]


def test_bundled_data_is_small_paired_and_attributed():
    files = [p for p in DATA.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2 * 2**20
    notice = (DATA / "NOTICE").read_text()
    assert "McConnell Brain Imaging Centre" in notice and "CC0" in notice and "BSD" in notice
    for task in TASKS:
        meta = json.loads((DATA / task / "meta.json").read_text())
        assert {"source", "license", "labels"} <= set(meta)
        images = sorted(p.name for p in (DATA / task / "images").glob("*.png"))
        masks = sorted(p.name for p in (DATA / task / "masks").glob("*.png"))
        assert images == masks and len(images) >= 8
        for name in images:
            img = np.asarray(Image.open(DATA / task / "images" / name))
            m = np.asarray(Image.open(DATA / task / "masks" / name))
            assert img.shape == m.shape and img.ndim == 2
            assert set(np.unique(m).tolist()) <= {0, *map(int, meta["labels"])}
            assert m.any()


def test_example_command_scores_and_overlays(tmp_path, capsys):
    out = tmp_path / "ex"
    code = main(["example", "--model", "universeg-tiny", "--support-size", "4", "--out", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert "randomly initialised" in captured.err and "meaningless" in captured.err
    lines = captured.out.splitlines()
    for task in TASKS:
        n = len(list((DATA / task / "images").glob("*.png")))
        per_target = [float(m.group(1)) for ln in lines if (m := re.match(rf"{task}/\S+: dice=([0-9.]+)", ln))]
        assert len(per_target) == n - 4
        assert all(0.0 <= d <= 1.0 for d in per_target)
        mean = next(float(m.group(1)) for ln in lines if (m := re.match(rf"{task}: mean dice ([0-9.]+)", ln)))
        assert mean == pytest.approx(np.mean(per_target), abs=2e-3)
        overlays = sorted((out / task).glob("*_overlay.png"))
        assert len(overlays) == n - 4
        first = np.asarray(Image.open(overlays[0]))
        ref = np.asarray(Image.open(DATA / task / "images" / overlays[0].name.replace("_overlay", "")))
        factor = -(-384 // max(ref.shape))  # panels enlarged to >= 384 px by a whole factor
        assert first.ndim == 3 and first.shape[1] == 2 * factor * ref.shape[1] + 3 * 16
        assert first.shape[0] > factor * ref.shape[0] + 2 * 16, "room for titles and the legend"
        labels = json.loads((DATA / task / "meta.json").read_text())["labels"]
        for c in map(int, labels):  # the legend shows every label's colour
            assert np.all(first == np.asarray(label_colour(c), np.uint8), axis=-1).sum() >= 100
    assert lines[-2].startswith("mean dice over 2 tasks")
    # the console names the labels from each task's meta.json, and says what to run next
    assert any(re.match(r"mni152_coronal_tissue/\S+: dice=[0-9.]+ \(grey matter [0-9.]+, white matter [0-9.]+\)", ln)
               for ln in lines), lines
    assert lines[-1].startswith("next, your own images: universeg-plus segment --support ")


def test_shipped_weights_segment_the_bundled_examples(tmp_path, capsys):
    """The default main job: shipped universeg-small weights (sha256 pinned in the table).

    Measured 0.555 (nuclei) and 0.802 (brain tissue), mean 0.678; random weights score far lower,
    so the margins below catch lost, swapped or mis-registered weights, not small drifts.
    """
    code = main(["example", "--out", str(tmp_path / "ex")])
    assert code == 0
    captured = capsys.readouterr()
    assert "randomly initialised" not in captured.err
    lines = captured.out.splitlines()
    assert lines[0].startswith("model: universeg-small (pretrained weights)")
    means = {
        m.group(1): float(m.group(2))
        for ln in lines
        if (m := re.match(r"(\S+): mean dice ([0-9.]+) over", ln))
    }
    assert set(means) == set(TASKS)
    assert means["dsb2018_nuclei_crops"] >= 0.40
    assert means["mni152_coronal_tissue"] >= 0.72
    overall = float(re.match(r"mean dice over 2 tasks: ([0-9.]+)", lines[-2]).group(1))
    assert overall == pytest.approx(0.678, abs=0.06)


def test_example_bad_input(tmp_path, capsys):
    assert main(["example", "--data", str(tmp_path / "none"), "--model", "universeg-tiny"]) == 2
    assert "example data folder not found" in capsys.readouterr().err
    assert main(["example", "--support-size", "50", "--model", "universeg-tiny", "--out", str(tmp_path)]) == 2
    assert "--support-size must be below" in capsys.readouterr().err


def test_quickstart_runs_and_writes_only_into_out(tmp_path):
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    proc = subprocess.run(
        [sys.executable, str(DATA.parent / "quickstart.py"), "--model", "universeg-tiny", "--random-weights", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr
    assert "segment(): (" in proc.stdout and (out / "mni152_support.safetensors").is_file()
    assert list(cwd.iterdir()) == [], "quickstart must not write into the working directory"


def test_main_job_ends_by_saying_how_to_activate_the_venv():
    """After the main job, `universeg-plus` lives in .venv, which the user's shell has not activated."""
    script = (DATA.parents[1] / "examples" / "main_job.sh").read_text()
    run_example = 'universeg-plus example "$@"\n'
    assert script.count(run_example) == 1
    tail = script[script.index(run_example) + len(run_example):]  # what runs after the example's Dice
    proc = subprocess.run(["bash", "-c", "set -euo pipefail\nVENV=.venv\n" + tail],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "  source .venv/bin/activate" in proc.stdout.splitlines()
