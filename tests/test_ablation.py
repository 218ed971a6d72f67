"""The ablation pipeline on the tiny configuration: config validation, every stage, resume, report, CLI."""

from __future__ import annotations

import csv
import json
import logging
import math

import pytest
import yaml

import universeg_plus.backends
import universeg_plus.evaluation
import universeg_plus.train.loop
from task_folders import make_task
from universeg_plus.ablation import compare, load_ablation_config, run_ablation, run_label, spread
from universeg_plus.ablation.config import SpeedSection
from universeg_plus.ablation.report import (
    ACCURACY_FIELDS,
    PER_SEED_FIELDS,
    PER_TASK_FIELDS,
    ROB_SEED_FIELDS,
    ROBUSTNESS_FIELDS,
    SPEED_REPORT_FIELDS,
    TASK_SUMMARY_FIELDS,
)
from universeg_plus.ablation.speed import measure_speed
from universeg_plus.cli import main
from universeg_plus.factory import create_model

VARIANTS = ["universeg-tiny", "tiny-gelu"]
SEEDS = [0, 1]
SIZES = [1, 2, 4]


class FakeCompiled:
    """Stands in for a TVM-compiled model: the eager model, logits rounded through float16."""

    def __init__(self, model):
        self.model, self.config = model, model.config

    def __call__(self, t, si, sm):
        return self.model(t, si, sm).half().float()


def _fake_compile(model, backend="tvm", level="O2", support_size=None, image_size=(128, 128), batch_size=1, **kw):
    if backend != "tvm" or support_size is None or tuple(image_size) != tuple(model.config.input_size):
        raise AssertionError(f"unexpected compile call: {backend} {support_size} {image_size}")
    return FakeCompiled(model)


def _read(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def _data(tmp_path, **over):
    root = tmp_path / "tasks"
    if not root.exists():
        for i, name in enumerate(["train_a", "train_b", "held_a", "held_b"]):
            make_task(root, name, n=8, labels=1, size=(32, 32), seed=i)
    data = {
        "name": "tiny-ablation",
        "out_dir": str(tmp_path / "out"),
        "variants": ["universeg-tiny", {"name": "universeg-tiny", "label": "tiny-gelu",
                                        "overrides": {"activation": "gelu"}}],
        "seeds": SEEDS,
        "threads": 1,
        "train": {
            "config": "configs/tiny.yaml",
            "steps": 3,
            "overrides": [
                f"data.root={root}", "data.held_out=[held_a, held_b]", "episodes.batch_size=2",
                "episodes.s_max=2", "train.log_every=1", "train.ckpt_every=1", "train.val_every=3",
                "train.device=cpu", "val.support_size=2", "val.targets_per_task=1",
            ],
        },
        "evaluate": {"settings": {"support_sizes": SIZES, "num_targets": 2, "ensemble": 2,
                                  "ensemble_max_support": 2, "batch_size": 4}},
        "robustness": {"tasks": [{"dataset": "held_a"}], "perturbations": ["gaussian_noise", "label_noise"],
                       "severities": [1, 3], "where": ["target", "support"], "support_size": 2, "num_targets": 2},
        "speed": {"support_size": 2, "rounds": 3, "calls_per_round": 1, "warmup": 1, "tvm_levels": ["O2"]},
        "report": {"docs_path": str(tmp_path / "docs" / "ablation.md")},
    }
    data.update(over)
    return data


def test_config_errors_name_the_field(tmp_path):
    data = _data(tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        load_ablation_config(data={**data, "seeds": [0]})
    with pytest.raises(ValueError, match=r"variants\[1\].*unknown model 'nope'"):
        load_ablation_config(data={**data, "variants": ["universeg-tiny", "nope"]})
    with pytest.raises(ValueError, match="baseline 'x'"):
        load_ablation_config(data={**data, "baseline": "x"})
    with pytest.raises(ValueError, match="labels must be unique"):
        load_ablation_config(data={**data, "variants": ["universeg-tiny", "universeg-tiny"]})
    with pytest.raises(ValueError, match=r"(?s)variants\[0\].*encoder_blocks must hold"):
        load_ablation_config(data={**data, "model_overrides": {"encoder_blocks": []}})
    with pytest.raises(ValueError, match="exactly one of 'dataset'"):
        load_ablation_config(data={**data, "robustness": {"tasks": [{"label": 1}]}})
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        load_ablation_config(data={**data, "train": {"config": str(tmp_path / "nowhere.yaml")}})
    cfg = load_ablation_config(data=data, overrides=["seeds=[3, 4, 5]", "baseline=tiny-gelu"])
    assert cfg.seeds == [3, 4, 5] and cfg.baseline_label == "tiny-gelu"
    run = cfg.run_config("tiny-gelu", 4)
    assert run.seed == 4 and run.train.steps == 3 and run.train.resume == "auto" and run.train.num_threads == 1
    assert run.model_config_resolved().activation == "gelu"
    assert run.out_dir == str(tmp_path / "out" / "runs" / "tiny-gelu" / "seed4")


def test_compare_rule_uses_non_overlapping_ranges():
    assert spread([0.1, 0.3])["std"] == pytest.approx(math.sqrt(0.02))
    assert compare([0.5, 0.52], [0.6, 0.61]) == {"delta": pytest.approx(0.095), "exceeds": True,
                                                "verdict": "exceeds the seed spread"}
    assert compare([0.5, 0.6], [0.55, 0.65])["verdict"] == "within noise"
    assert compare([0.5], [0.6])["exceeds"] is None


def test_speed_without_tvm_keeps_eager_and_warns(monkeypatch, caplog):
    def no_tvm(*a, **k):
        raise ImportError("apache-tvm is not installed")

    monkeypatch.setattr(universeg_plus.backends, "compile", no_tvm)
    models = {"a": create_model("universeg-tiny"), "b": create_model("universeg-tiny", activation="relu")}
    settings = SpeedSection(support_size=2, rounds=2, calls_per_round=1, warmup=0, tvm_levels=["O2"])
    with caplog.at_level(logging.WARNING):
        rows, skipped = measure_speed(models, settings, progress=False)
    assert "tvm-O2" in skipped and "skipping compiled speed" in caplog.text
    assert sorted((r["variant"], r["backend"], r["round"]) for r in rows) == [
        (v, "eager", r) for v in ("a", "b") for r in range(2)
    ]
    # rounds interleave: the second round starts with the other variant
    assert [r["variant"] for r in rows] == ["a", "b", "b", "a"]
    assert all(r["ms_per_target"] > 0 for r in rows)


def test_pipeline_end_to_end_resume_and_report(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(universeg_plus.backends, "compile", _fake_compile)
    out = tmp_path / "out"

    # 1) an interrupted train stage: every run stops at step 2 of 3
    first = load_ablation_config(data=_data(tmp_path))
    train_section = _data(tmp_path)["train"]
    stopped = load_ablation_config(
        data=_data(tmp_path, train={**train_section, "overrides": [*train_section["overrides"], "train.stop_at=2"]})
    )
    res = run_ablation(stopped, ["train"], progress=False)
    assert [r["status"] for r in res["train"]] == ["stop_at"] * 4
    for label in VARIANTS:
        for seed in SEEDS:
            assert (out / "runs" / label / f"seed{seed}" / "last.pt").is_file()
    with caplog.at_level(logging.WARNING):
        assert run_ablation(first, ["evaluate"], progress=False)["evaluate"] == []
    assert "4 run(s) not trained yet" in caplog.text

    # 2) the whole pipeline: training resumes from last.pt, then every stage and the report
    caplog.clear()
    with caplog.at_level(logging.INFO):
        res = run_ablation(first, ["all"], progress=False, command="universeg-plus ablate --config tiny.yaml")
    assert [r["status"] for r in res["train"]] == ["done"] * 4
    assert caplog.text.count("resumed from") == 4
    # the robustness study loads the trained weights, built with the variants' overrides
    assert "do not have the config" not in caplog.text and "randomly initialised" not in caplog.text
    for label in VARIANTS:
        for seed in SEEDS:
            run = out / "runs" / label / f"seed{seed}"
            marker = json.loads((run / "ablation.json").read_text())
            assert marker["status"] == "done" and marker["step"] == 3, marker
            assert (run / "model" / "model.safetensors").is_file()
            assert (out / "eval" / label / f"seed{seed}" / "summary.csv").is_file()
    gelu = json.loads((out / "runs" / "tiny-gelu" / "seed0" / "model" / "config.json").read_text())
    assert gelu["activation"] == "gelu" and gelu["input_size"] == [32, 32]

    # accuracy CSVs: columns and row counts
    fields, per_task = _read(out / "accuracy_per_task.csv")
    assert fields == PER_TASK_FIELDS
    _, one = _read(out / "eval" / "universeg-tiny" / "seed0" / "summary.csv")
    n_tasks = len({r["task"] for r in one})
    assert n_tasks == 2  # held_a, held_b (one label each)
    combos = {(r["method"], int(r["requested_support"])) for r in one}
    # every S without ensembling, the ensemble for S <= 2
    assert combos == {("universeg", s) for s in SIZES} | {("universeg_ensemble", s) for s in (1, 2)}
    assert len(per_task) == len(VARIANTS) * len(SEEDS) * n_tasks * len(combos)
    fields, per_seed = _read(out / "accuracy_per_seed.csv")
    assert fields == PER_SEED_FIELDS and len(per_seed) == len(VARIANTS) * len(SEEDS) * len(combos)
    fields, task_summary = _read(out / "accuracy_task_summary.csv")
    assert fields == TASK_SUMMARY_FIELDS and len(task_summary) == len(VARIANTS) * n_tasks * len(combos)
    fields, acc = _read(out / "accuracy.csv")
    assert fields == ACCURACY_FIELDS and len(acc) == len(VARIANTS) * len(combos)
    for r in acc:
        assert int(r["dice_n_seeds"]) == 2
        assert float(r["dice_min"]) <= float(r["dice_mean"]) <= float(r["dice_max"])
        seeds = [float(x["dice"]) for x in per_seed if x["variant"] == r["variant"] and x["method"] == r["method"]
                 and x["requested_support"] == r["requested_support"]]
        assert float(r["dice_mean"]) == pytest.approx(sum(seeds) / 2, abs=1e-5)
        if r["variant"] == "universeg-tiny":
            assert r["verdict"] == "baseline" and float(r["delta_vs_baseline"]) == 0.0
        else:  # the noise rule recomputed from the per-seed values: disjoint min-max ranges exceed
            base = [float(x["dice"]) for x in per_seed if x["variant"] == "universeg-tiny"
                    and x["method"] == r["method"] and x["requested_support"] == r["requested_support"]]
            disjoint = min(seeds) > max(base) or max(seeds) < min(base)
            assert r["verdict"] == ("exceeds the seed spread" if disjoint else "within noise"), (r, seeds, base)
            assert float(r["delta_vs_baseline"]) == pytest.approx(sum(seeds) / 2 - sum(base) / 2, abs=1e-5)

    # robustness: gaussian noise on target and support, label noise on support; 2 severities each
    fields, rob_seed = _read(out / "robustness_per_seed.csv")
    assert fields == ROB_SEED_FIELDS and len(rob_seed) == len(VARIANTS) * len(SEEDS) * 3 * 2
    fields, rob = _read(out / "robustness.csv")
    assert fields == ROBUSTNESS_FIELDS and len(rob) == len(VARIANTS) * 3 * 2
    assert {(r["perturbation"], r["where"]) for r in rob} == {
        ("gaussian_noise", "target"), ("gaussian_noise", "support"), ("label_noise", "support")
    }
    _, study = _read(out / "robustness" / "results.csv")
    assert {r["model"] for r in study} == {run_label(v, s) for v in VARIANTS for s in SEEDS}

    # speed: eager and the (fake) compiled backend for both variants, ratios to the baseline
    fields, speed = _read(out / "speed.csv")
    assert fields == SPEED_REPORT_FIELDS
    assert sorted((r["variant"], r["backend"]) for r in speed) == sorted(
        (v, b) for v in VARIANTS for b in ("eager", "tvm-O2")
    )
    for r in speed:
        if r["variant"] == "universeg-tiny":
            assert float(r["ratio_to_baseline"]) == pytest.approx(1.0)
        assert float(r["ms_min"]) <= float(r["ms_median"]) <= float(r["ms_max"])
    _, rounds = _read(out / "speed" / "rounds.csv")
    assert len(rounds) == len(VARIANTS) * 2 * 3

    # plots and the report (also copied to docs_path, with its plots)
    for name in ("dice_vs_support.png", "dice_drop_vs_severity.png"):
        assert (out / name).stat().st_size > 0
        assert (tmp_path / "docs" / "images" / "ablation" / name).stat().st_size > 0
    text = (out / "ablation.md").read_text()
    assert "±" in text and "mean ± std (min–max)" in text
    assert "`tiny-gelu` vs `universeg-tiny`: " in text
    assert text.count("`tiny-gelu` vs `universeg-tiny`") == 2  # accuracy and robustness statements
    assert "universeg-plus ablate --config tiny.yaml" in text and "Machine:" in text and "wall time" in text
    exceeding = [r for r in acc if r["verdict"] == "exceeds the seed spread"]
    if exceeding:  # the statement names what exceeds, and says the rest is within noise
        assert "`tiny-gelu` vs `universeg-tiny`: the difference exceeds the seed spread at" in text
    else:
        assert "`tiny-gelu` vs `universeg-tiny`: every accuracy difference is within noise" in text
    docs = (tmp_path / "docs" / "ablation.md").read_text()
    assert "](images/ablation/dice_vs_support.png)" in docs

    # 3) a rerun does no work: no training, no evaluation, no new robustness rows, no new timing
    def boom(*a, **k):
        raise AssertionError("finished work was redone")

    monkeypatch.setattr(universeg_plus.train.loop, "train", boom)
    monkeypatch.setattr(universeg_plus.evaluation, "evaluate", boom)
    monkeypatch.setattr(universeg_plus.backends, "compile", boom)
    rounds_before = (out / "speed" / "rounds.csv").read_text()
    timings_before = (out / "timings.json").read_text()
    res = run_ablation(first, ["all"], progress=False)
    assert [r["status"] for r in res["train"]] == ["skipped"] * 4
    assert [r["status"] for r in res["evaluate"]] == ["skipped"] * 4
    assert res["robustness"].rows_written == 0 and res["robustness"].rows_skipped == len(study)
    assert (out / "speed" / "rounds.csv").read_text() == rounds_before
    assert (out / "timings.json").read_text() == timings_before

    # 4) another recipe in the same out_dir is refused, naming the run folder
    other = load_ablation_config(data=_data(tmp_path), overrides=["train.steps=4"])
    with pytest.raises(ValueError, match=r"runs/universeg-tiny/seed0 holds a training run made with other"):
        run_ablation(other, ["train"], progress=False)

    # 5) the CLI: report stage only, and the printed config
    cfg_path = tmp_path / "ablation.yaml"
    cfg_path.write_text(yaml.safe_dump(_data(tmp_path)))
    (out / "ablation.md").unlink()
    assert main(["ablate", "--config", str(cfg_path), "--stage", "report", "--no-progress"]) == 0
    # the report quotes the command that produced the numbers, not the one that rewrote the report
    assert "universeg-plus ablate --config tiny.yaml" in (out / "ablation.md").read_text()
    assert main(["ablate", "--config", str(cfg_path), "--set", "seeds=[1]"]) == 2


def test_robustness_model_spec_checks_variant_overrides(tmp_path):
    from universeg_plus.robustness import load_study_config

    data = {"tasks": [{"path": str(tmp_path)}], "models": [{"name": "universeg-tiny", "overrides": {"nope": 1}}]}
    with pytest.raises(ValueError, match="unknown config field"):
        load_study_config(data=data)
    data["models"][0]["overrides"] = {"activation": "gelu"}
    assert load_study_config(data=data).models[0].overrides == {"activation": "gelu"}


def _with_overrides(data, *extra):
    train = data["train"]
    return {**data, "train": {**train, "overrides": [*train["overrides"], *extra]}}


def test_data_is_checked_before_any_stage_starts(tmp_path, caplog):
    data = _data(tmp_path)
    missing = tmp_path / "nowhere"
    cfg = load_ablation_config(data=_with_overrides(data, f"data.root={missing}"))
    with caplog.at_level(logging.INFO), pytest.raises(
        FileNotFoundError, match=rf"data.root {missing} does not exist; .*UNIVERSEG_PLUS_TASKS"
    ):
        run_ablation(cfg, ["all"], progress=False)
    assert "ablation stage" not in caplog.text and not (tmp_path / "out").exists()
    cfg = load_ablation_config(data={**data, "robustness": {**data["robustness"], "tasks": [{"dataset": "nope"}]}})
    with pytest.raises(FileNotFoundError, match=r"robustness: task folder .*nope \(with images/\) does not exist"):
        run_ablation(cfg, ["robustness"], progress=False)
    cfg = load_ablation_config(data={**data, "evaluate": {**data["evaluate"], "tasks": ["held_a", "gone/label_1"]}})
    with pytest.raises(FileNotFoundError, match=r"evaluate: no task folder gone under data.root"):
        run_ablation(cfg, ["evaluate"], progress=False)
    cfg = load_ablation_config(data=_with_overrides(data, "data.held_out=[absent_a, absent_b]"))
    with pytest.raises(FileNotFoundError, match="evaluate: no task folder absent_a, absent_b"):
        run_ablation(cfg, ["evaluate"], progress=False)
    assert not (tmp_path / "out").exists()
    # the report needs no data
    assert "markdown" in run_ablation(load_ablation_config(data=_with_overrides(data, f"data.root={missing}")),
                                      ["report"], progress=False)["report"]


def test_cli_ablate_checks_data_first(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    data = _data(tmp_path)
    data["train"]["overrides"] = [o for o in data["train"]["overrides"] if not o.startswith("data.root=")]
    data["train"]["overrides"].append("data.root=${UNIVERSEG_PLUS_TASKS}")
    cfg_path = tmp_path / "ablation.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    env = {**os.environ, "UNIVERSEG_PLUS_TASKS": str(tmp_path / "moved")}
    proc = subprocess.run([sys.executable, "-m", "universeg_plus", "ablate", "--config", str(cfg_path)],
                          cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    assert f"data.root {tmp_path / 'moved'} does not exist" in proc.stderr and "ablation stage" not in proc.stderr
    assert not (tmp_path / "out").exists()
