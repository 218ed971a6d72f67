"""``universeg-plus segment-dataset`` in fresh processes: Ctrl-C mid-run, the printed rerun command, and
outputs byte-identical to ``universeg-plus segment`` for the same inputs.

Each command starts its own local Ray instance on 127.0.0.1 (no dashboard, no usage stats).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from universeg_plus.cli import build_parser
from universeg_plus.io.atomic import PARTIAL_MARK
from universeg_plus.io.tables import read_csv_rows

ROOT = Path(__file__).resolve().parents[1]
# Trained weights (shipped): random ones would differ between two processes (torch seeds each at random).
MODEL = ["--model", "universeg-small", "--ensemble", "2", "--support-size", "2", "--flips"]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "RAY_USAGE_STATS_ENABLED": "0"}


def _cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "universeg_plus", *args], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _communicate(proc, timeout):
    """``proc.communicate(timeout=...)``; past the timeout, Ctrl-C (the command stops its local Ray instance)
    and then kill, before the test fails: a failed test leaves no Ray instance behind to slow the next ones."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        raise


def test_help_names_every_option():
    sub = build_parser()._subparsers._group_actions[0].choices["segment-dataset"]
    text = sub.format_help()
    for opt in ["--support", "--out", "--address", "--num-workers", "--gpus-per-worker", "--skip-existing",
                "--only-failed", "[cluster]"]:
        assert opt in text
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and len(action.help) > 10, action.option_strings


def test_interrupt_then_rerun_gives_the_masks_of_segment(tmp_path):
    pytest.importorskip("ray.data", reason="Ray is not installed: pip install 'universeg-plus[cluster]'")
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (tmp_path / "sup" / sub).mkdir(parents=True)
    for i in range(3):
        m = np.zeros((40, 40), np.uint8)
        m[5 + 4 * i : 25, 8:30] = 1
        img = (rng.random((40, 40)) * 80 + 150 * m).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / "sup" / "images" / f"e{i}.png")
        Image.fromarray(m).save(tmp_path / "sup" / "masks" / f"e{i}.png")
    src = tmp_path / "in"
    src.mkdir()
    n = 20
    for i in range(n):
        Image.fromarray((rng.random((48, 56)) * 255).astype(np.uint8)).save(src / f"t{i:02d}.png")
    (src / "zz_broken.png").write_bytes(b"junk")
    sup = ["--support-images", str(tmp_path / "sup" / "images"), "--support-masks", str(tmp_path / "sup" / "masks")]
    ref = _cli("segment", *sup, "--target", str(src), "--out", str(tmp_path / "ref"), *MODEL)
    _communicate(ref, 300)
    assert ref.returncode == 1  # the broken file fails there too
    out = tmp_path / "out"

    # Ctrl-C once the first output is written: exit 130, a report with the unfinished inputs.
    proc = _cli("segment-dataset", str(src), "--support", str(tmp_path / "sup"), "--out", str(out),
                "--num-workers", "2", *MODEL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not (out.is_dir() and any(out.glob("t*.png"))):
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = _communicate(proc, 120)
    assert proc.returncode == 130, err
    rows = read_csv_rows(out / "segment-dataset-report.csv")
    assert len(rows) == n + 1 and {r["status"] for r in rows} <= {"ok", "failed", "not-run"}
    assert any(r["status"] == "not-run" for r in rows), "the run ended before Ctrl-C took effect"
    assert not [p for p in out.iterdir() if PARTIAL_MARK in p.name]

    # The printed command reruns what is missing; the report then has every input, the broken one failed.
    command = shlex.split(err.split("rerun them with:\n", 1)[1].splitlines()[0])
    assert command[:4] == ["universeg-plus", "segment-dataset", "--only-failed", str(out / "segment-dataset-report.csv")]
    rerun = _cli(*command[1:])
    _, err = _communicate(rerun, 300)
    assert rerun.returncode == 1 and "zz_broken.png" in err
    rows = read_csv_rows(out / "segment-dataset-report.csv")
    assert [r["status"] for r in rows] == ["ok"] * n + ["failed"]
    ref_files = sorted(p.name for p in (tmp_path / "ref").iterdir())
    assert sorted(p.name for p in out.glob("*.png")) == ref_files
    for name in ref_files:
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name


def test_colour_is_fitted_once_and_every_worker_projects_alike(tmp_path):
    """``--colour fisher``: the masks of ``segment --colour fisher`` byte for byte on 2 workers; a grey target
    fails there as in ``segment`` (the workers hold the projection)."""
    pytest.importorskip("ray.data", reason="Ray is not installed: pip install 'universeg-plus[cluster]'")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_colour import make_task  # the synthetic hue task: equal luma, other hue

    images, masks = make_task(7, n=40, seed=7)
    for sub in ("sup/images", "sup/masks", "in"):
        (tmp_path / sub).mkdir(parents=True)
    for k in range(3):
        Image.fromarray(images[k]).save(tmp_path / "sup" / "images" / f"e{k}.png")
        Image.fromarray(masks[k] * 255).save(tmp_path / "sup" / "masks" / f"e{k}.png")
    for k in range(3, 7):
        Image.fromarray(images[k]).save(tmp_path / "in" / f"t{k}.png")
    Image.fromarray(images[3][..., 1]).save(tmp_path / "in" / "zz_grey.png")
    opts = ["--model", "universeg-small", "--colour", "fisher"]
    ref = _cli("segment", "--support", str(tmp_path / "sup"), "--target", str(tmp_path / "in"),
               "--out", str(tmp_path / "ref"), *opts)
    out, err = _communicate(ref, 300)
    assert ref.returncode == 1 and "colour: fisher" in out and "zz_grey.png is grayscale" in err, err[-2000:]
    run = _cli("segment-dataset", str(tmp_path / "in"), "--support", str(tmp_path / "sup"), "--out",
               str(tmp_path / "out"), "--num-workers", "2", *opts)
    out, err = _communicate(run, 300)
    assert run.returncode == 1 and "colour: fisher" in out, err[-3000:]
    rows = {Path(r["input"]).name: r for r in read_csv_rows(tmp_path / "out" / "segment-dataset-report.csv")}
    grey = rows["zz_grey.png"]
    assert grey["status"] == "failed" and "projected from colour (fisher)" in grey["error"], grey
    for k in range(3, 7):
        assert rows[f"t{k}.png"]["status"] == "ok"
        assert (tmp_path / "out" / f"t{k}.png").read_bytes() == (tmp_path / "ref" / f"t{k}.png").read_bytes(), k
    assert "--colour fisher" in err  # the printed rerun command keeps the choice
