"""``universeg-plus evaluate`` end to end on two small task folders; refusal; the model card."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from single_thread import one_thread  # noqa: F401  (autouse: one torch thread)
from task_folders import make_task

from universeg_plus import create_model
from universeg_plus.cli import main
from universeg_plus.evaluation.report import RECORD_FIELDS, SUMMARY_FIELDS


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("tasks")
    make_task(r, "alpha", n=8, labels=2, seed=1)  # two binary tasks of 8 pairs
    make_task(r, "beta", n=6, labels=1, seed=2)  # one binary task of 6 pairs
    make_task(r, "gamma", n=6, labels=1, seed=3)  # the "training" dataset below
    for name, lic in [("alpha", "CC BY-NC 4.0 (non-commercial)"), ("beta", "CC0"), ("gamma", "CC BY 4.0")]:
        meta = json.loads((r / name / "meta.json").read_text())
        (r / name / "meta.json").write_text(json.dumps({**meta, "license": lic, "dataset": f"{name} set"}))
    return r


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    from universeg_plus.hub import save_pretrained

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("weights") / "tiny"
    save_pretrained(create_model("universeg-tiny"), d)
    info = {"model_name": "universeg-tiny", "train_datasets": ["gamma"], "train_tasks": ["gamma/structure_1"],
            "step": 1234, "elapsed_s": 3723.0, "device": "NVIDIA H100 80GB HBM3", "world_size": 1}
    (d / "training.json").write_text(json.dumps(info))
    return d


ARGS = ["--support-sizes", "1", "2", "8", "--targets", "3", "--ensemble", "3", "--no-progress"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_evaluate_writes_csv_and_markdown_deterministically(root, weights, tmp_path, capsys) -> None:
    base = ["evaluate", "--model", "universeg-tiny", "--weights", str(weights), "--data-root", str(root)]
    base += ["--tasks", "alpha", "beta", *ARGS, "--baseline", "--baseline-steps", "2"]
    assert main([*base, "--out", str(tmp_path / "a"), "--model-card", str(tmp_path / "card.md")]) == 0
    printed = capsys.readouterr().out
    per = _rows(tmp_path / "a" / "per_target.csv")
    summary = _rows(tmp_path / "a" / "summary.csv")
    assert list(per[0]) == RECORD_FIELDS and list(summary[0]) == SUMMARY_FIELDS
    # 3 binary tasks x 3 sizes x 3 methods (plain, ensemble, U-Net) x 3 targets
    assert len(per) == 81 and len(summary) == 27
    assert {r["method"] for r in summary} == {"universeg", "universeg_ensemble", "unet"}
    beta = [r for r in summary if r["task"] == "beta/structure_1" and r["method"] == "universeg"]
    assert [(r["requested_support"], r["support_size"]) for r in beta] == [("1", "1"), ("2", "2"), ("8", "3")]
    for r in per:
        assert 0.0 <= float(r["dice"]) <= 1.0
    # the same target is scored by every method against the same support set size
    assert {(r["task"], r["target"]) for r in per if r["method"] == "unet"} == {
        (r["task"], r["target"]) for r in per if r["method"] == "universeg"
    }
    md = (tmp_path / "a" / "results.md").read_text()
    assert "| alpha/structure_1 | 8 → 5 |" in md and "U-Net (per task)" in md
    assert "| **mean over 3 tasks** | 2 |" in printed

    assert main([*base, "--out", str(tmp_path / "b")]) == 0
    for name in ("per_target.csv", "summary.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()

    card = (tmp_path / "card.md").read_text()
    assert "variant: `universeg-tiny`" in card
    assert f"{sum(p.numel() for p in create_model('universeg-tiny').parameters()):,} parameters" in card
    assert "steps: 1234; hardware: NVIDIA H100 80GB HBM3; wall time: 1 h 02 min" in card
    assert "| gamma | " in card and "CC BY 4.0" in card  # training data with its licence
    assert "CC BY-NC 4.0 (non-commercial)" in card  # evaluation data licences too
    assert "| alpha/structure_2 | 1 |" in card and "--baseline-steps 2" in card


def test_refuses_training_tasks(root, weights, tmp_path, capsys) -> None:
    args = ["evaluate", "--model", "universeg-tiny", "--weights", str(weights), "--data-root", str(root), *ARGS]
    assert main([*args, "--tasks", "alpha", "gamma", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "refusing to evaluate" in err and "gamma" in err and "alpha" not in err.split("validated on:")[1]
    assert main([*args, "--tasks", "gamma/structure_1", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "summary.csv").exists()


def test_user_errors(root, tmp_path, capsys) -> None:
    args = ["evaluate", "--model", "universeg-tiny", "--data-root", str(root), "--out", str(tmp_path), *ARGS]
    assert main([*args, "--tasks", "nope"]) == 2
    assert "unknown task" in capsys.readouterr().err
    assert main([*args]) == 2  # none of the default held-out datasets is in this root
    assert "pass --tasks" in capsys.readouterr().err
    assert main([*args, "--tasks", "beta", "--model-card", str(tmp_path / "c.md")]) == 2
    assert "--model-card needs --weights" in capsys.readouterr().err


def test_adapt_and_prior_rows_via_real_process(root, weights, tmp_path) -> None:
    """The user path: a fresh ``python -m universeg_plus evaluate`` with adaptation (on whole images and on
    native-scale windows, predicted tiled), the U-Net and its prior variant."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "universeg_plus", "evaluate", "--model", "universeg-tiny", "--weights", str(weights),
            "--data-root", str(root), "--tasks", "beta", "--support-sizes", "2", "--targets", "2", "--ensemble", "1",
            "--baseline", "--baseline-steps", "2", "--baseline-prior", "--adapt-steps", "2", "--adapt-mix",
            "--adapt-tiled",
            "--threads", "1", "--no-progress", "--out", str(tmp_path / "e")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    methods = {r["method"] for r in _rows(tmp_path / "e" / "summary.csv")}
    assert methods == {
        "universeg", "universeg_adapt", "universeg_adapt_mix", "universeg_adapt_tiled", "unet", "unet_prior"
    }
    assert {r["method"] for r in _rows(tmp_path / "e" / "timings.csv")} == methods
    assert "UniverSeg + adapt" in proc.stdout and "wall time per task" in proc.stdout
    assert "UniverSeg + adapt, tiled" in proc.stdout
    results = (tmp_path / "e" / "results.md").read_text()
    assert "--adapt --adapt-steps 2 --adapt-mix --adapt-tiled" in results and "- adaptation, tiled:" in results
    tiled = [r for r in _rows(tmp_path / "e" / "per_target.csv") if r["method"] == "universeg_adapt_tiled"]
    assert len(tiled) == 2 and all(0.0 <= float(r["dice"]) <= 1.0 for r in tiled)
    bad = subprocess.run([*args[:-2], "--adapt-steps", "0", "--out", str(tmp_path / "f")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 2 and "--adapt-steps must be >= 1" in bad.stderr and not (tmp_path / "f").exists()


def test_colour_flag_adds_rows_and_is_in_the_command(root, tmp_path) -> None:
    """``--colour fisher auto`` on grey task folders: the colour rows exist and equal the plain rows."""
    args = ["evaluate", "--model", "universeg-tiny", "--data-root", str(root), "--tasks", "beta",
            "--support-sizes", "2", "--targets", "2", "--ensemble", "1", "--no-progress", "--colour", "fisher", "auto",
            "--out", str(tmp_path)]
    assert main(args) == 0
    summary = _rows(tmp_path / "summary.csv")
    dice = {r["method"]: r["dice_mean"] for r in summary}
    assert set(dice) == {"universeg", "universeg_colour_fisher", "universeg_colour_auto"}
    assert dice["universeg_colour_fisher"] == dice["universeg_colour_auto"] == dice["universeg"]
    md = (tmp_path / "results.md").read_text()
    assert "UniverSeg, colour: Fisher projection" in md and "--colour fisher auto" in md
