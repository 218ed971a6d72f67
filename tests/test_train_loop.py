from __future__ import annotations

import csv
import json
import logging
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from task_folders import make_task

from universeg_plus import create_model
from universeg_plus.cli import main
from universeg_plus.config import UniverSegConfig
from universeg_plus.train import load_run_config, train
from universeg_plus.train.checkpoint import load_checkpoint
from universeg_plus.train.loop import lr_lambda

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def task_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    make_task(root, "train_a", n=6, labels=2, seed=1)
    make_task(root, "train_b", n=4, labels=1, seed=2)
    make_task(root, "msd_spleen_ct", n=5, labels=1, seed=3)  # a default held-out dataset
    make_task(root, "glas_gland_he", n=5, labels=1, seed=4)  # a default validation dataset
    return root


def _cfg(out: Path, root: Path, *extra: str):
    return load_run_config(
        CONFIGS / "tiny.yaml",
        [
            f"out_dir={out}",
            f"data.root={root}",
            "train.steps=8",
            "train.val_every=4",
            "train.ckpt_every=100",
            "train.log_every=2",
            "train.num_threads=2",
            *extra,
        ],
    )


def _params(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_resume_is_exact(tmp_path, task_root):
    full = train(_cfg(tmp_path / "full", task_root))
    assert full["stopped"] == "done" and full["step"] == 8
    part = train(_cfg(tmp_path / "part", task_root, "train.stop_at=3"))
    assert part["stopped"] == "stop_at" and part["step"] == 3
    assert load_checkpoint(tmp_path / "part" / "last.pt")["step"] == 3
    rest = train(_cfg(tmp_path / "part", task_root, f"train.resume={tmp_path / 'part' / 'last.pt'}"))
    assert rest["step"] == 8
    a, b = _params(tmp_path / "full" / "model"), _params(tmp_path / "part" / "model")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ck_a, ck_b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "part" / "last.pt")
    assert torch.equal(ck_a["rng"]["data"][0], ck_b["rng"]["data"][0])
    assert ck_a["scheduler"] == ck_b["scheduler"]
    steps = [int(r["step"]) for r in csv.DictReader((tmp_path / "part" / "log.csv").open())]
    assert steps == sorted(steps) and steps[-1] == 8 and len(steps) == len(set(steps))


def test_outputs_and_held_out_tasks_never_trained_nor_validated_on(tmp_path, task_root):
    out = tmp_path / "run"
    train(_cfg(out, task_root))
    info = json.loads((out / "model" / "training.json").read_text())
    assert info["train_datasets"] == ["train_a", "train_b"]
    assert not any(t.startswith(("msd_spleen_ct", "glas_gland_he")) for t in info["train_tasks"])
    assert "msd_spleen_ct" in info["held_out_datasets"] and "glas_gland_he" in info["validation_datasets"]
    # quick validation (and best/) read the validation split only, never the held-out one
    val_rows = list(csv.DictReader((out / "val.csv").open()))
    assert {r["task"] for r in val_rows} == {"glas_gland_he/structure_1"}
    # and evaluate refuses what validation saw, but scores the held-out dataset
    from universeg_plus.evaluation import check_held_out

    with pytest.raises(ValueError, match=r"glas_gland_he/structure_1 \(validated on\)"):
        check_held_out([("glas_gland_he/structure_1", "glas_gland_he")], info)
    check_held_out([("msd_spleen_ct/structure_1", "msd_spleen_ct")], info)
    log_rows = list(csv.DictReader((out / "log.csv").open()))
    assert set(log_rows[0]) >= {"step", "loss", "dice", "lr", "episodes_per_s", "val_dice"}
    assert float(log_rows[-1]["episodes_per_s"]) > 0 and log_rows[-1]["val_dice"] != ""
    # the exported folder loads into the registered architecture
    config = UniverSegConfig.model_validate_json((out / "best" / "config.json").read_text())
    model = create_model("universeg-tiny")
    assert model.config == config
    model.load_state_dict(_params(out / "best"))


def test_time_budget_stops_with_checkpoint(tmp_path, task_root):
    summary = train(_cfg(tmp_path / "t", task_root, "train.max_minutes=0.000001", "train.steps=1000"))
    assert summary["stopped"] == "time" and summary["step"] == 1
    assert load_checkpoint(tmp_path / "t" / "last.pt")["step"] == 1


def test_tasks_file_and_cli(tmp_path, task_root, capsys):
    tasks_file = tmp_path / "tasks.pt"
    base = ["train", "--config", str(CONFIGS / "tiny.yaml"), "--set", f"data.root={task_root}"]
    assert main([*base, "--export-tasks", str(tasks_file)]) == 0
    assert "4 datasets" in capsys.readouterr().out
    code = main(
        [
            "train",
            "--config",
            str(CONFIGS / "tiny.yaml"),
            "--set",
            f"data.tasks_file={tasks_file}",
            "--set",
            f"out_dir={tmp_path / 'cli'}",
            "--set",
            "train.steps=3",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 3
    info = json.loads((tmp_path / "cli" / "model" / "training.json").read_text())
    assert info["train_datasets"] == ["train_a", "train_b"]
    assert main([*base, "--set", "data.size=[16,16]", "--set", f"data.tasks_file={tasks_file}"]) == 2
    assert "training size" in capsys.readouterr().err


def test_resume_rejects_other_architecture(tmp_path, task_root):
    train(_cfg(tmp_path / "a", task_root, "train.steps=1", "val.enabled=false"))
    cfg = _cfg(
        tmp_path / "b",
        task_root,
        "model.overrides.encoder_blocks=[4,4,4]",
        f"train.resume={tmp_path / 'a' / 'last.pt'}",
    )
    with pytest.raises(ValueError, match="different architecture"):
        train(cfg)


def test_lr_schedule():
    assert lr_lambda(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_lambda(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_lambda(10, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_lambda(55, 10, 100, 0.1) == pytest.approx(0.55)
    assert lr_lambda(100, 10, 100, 0.1) == pytest.approx(0.1)


def test_superpixel_episodes_run(tmp_path, task_root):
    summary = train(
        _cfg(
            tmp_path / "sp",
            task_root,
            "data.superpixel_prob=0.5",
            "data.synthetic_prob=0.25",
            "train.steps=3",
            "val.enabled=false",
        )
    )
    assert summary["step"] == 3
    info = json.loads((tmp_path / "sp" / "model" / "training.json").read_text())
    assert info["superpixel_prob"] == 0.5


def test_nifti_sources_train_and_hold_out(tmp_path):
    nib = pytest.importorskip("nibabel")
    import numpy as np

    for name in ("vol_a", "vol_b"):
        rng = np.random.default_rng(0)
        lab = np.zeros((24, 24, 6), np.int16)
        lab[6:18, 5:15, 1:5] = 1
        vol = rng.random((24, 24, 6)).astype(np.float32) + lab
        nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / f"{name}_img.nii.gz")
        nib.save(nib.Nifti1Image(lab, np.eye(4)), tmp_path / f"{name}_lab.nii.gz")
    out = tmp_path / "run"
    cfg = load_run_config(
        CONFIGS / "tiny.yaml",
        [f"out_dir={out}", "train.steps=2", "data.synthetic_prob=0.0", "data.val_tasks=[vol_b]",
         f"data.nifti=[{{name: vol_a, images: '{tmp_path}/vol_a_img*', labels: '{tmp_path}/vol_a_lab*', axes: [1, 2]}},"
         f" {{name: vol_b, images: '{tmp_path}/vol_b_img*', labels: '{tmp_path}/vol_b_lab*'}}]"],
    )
    train(cfg)
    info = json.loads((out / "model" / "training.json").read_text())
    assert info["train_datasets"] == ["vol_a_axis1", "vol_a_axis2"]
    assert {r["task"] for r in csv.DictReader((out / "val.csv").open())} == {"vol_b_axis2/label_1"}


def test_progress_bar_or_log_lines(tmp_path, task_root, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="universeg_plus.train.loop"):
        train(_cfg(tmp_path / "lines", task_root, "train.progress=false", "train.steps=4", "val.enabled=false"))
    assert re.search(r"step 2/4: loss \d+\.\d{5}, dice \d\.\d{5}, lr ", caplog.text)
    assert "step 4/4: loss" in caplog.text and "it/s" not in capsys.readouterr().err
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="universeg_plus.train.loop"):
        train(_cfg(tmp_path / "bar", task_root, "train.progress=true", "train.steps=4", "val.enabled=false"))
    err = capsys.readouterr().err
    assert "train: 100%" in err and re.search(r"loss=\d+\.\d{5}, dice=\d\.\d{5}", err), err
    assert "step 2/4: loss" not in caplog.text


def test_cli_tiny_config_shows_the_loss():
    # a user's first command: no terminal here, so the default (train.progress unset) logs the loss
    proc = subprocess.run(
        [sys.executable, "-m", "universeg_plus", "train", "--config", "configs/tiny.yaml", "--print-config"],
        cwd=CONFIGS.parent, capture_output=True, text=True, timeout=300,
    )
    assert json.loads(proc.stdout)["train"]["progress"] is None
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [sys.executable, "-m", "universeg_plus", "train", "--config", "configs/tiny.yaml",
             "--set", f"out_dir={out}", "--set", "train.steps=6", "--set", "train.device=cpu",
             "--set", "train.num_threads=1"],
            cwd=CONFIGS.parent, capture_output=True, text=True, timeout=600,
        )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"step 5/6: loss \d+\.\d{5}, dice \d\.\d{5}", proc.stderr), proc.stderr
    assert "step 6/6: loss" in proc.stderr
