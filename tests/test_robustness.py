"""The robustness study: config validation, grid, end-to-end run on the tiny model, resume, report, CLI."""

from __future__ import annotations

import csv
import logging
import math
import sys

import pytest

import universeg_plus.backends
from task_folders import make_task
from universeg_plus.cli import main
from universeg_plus.robustness import COLUMNS, load_results, load_study_config, run_study, study_cases, summarize


class FakeCompiled:
    """Stands in for a TVM-compiled model: the eager model with logits rounded through float16."""

    def __init__(self, model, level, support_size, image_size, batch_size):
        self.model, self.level, self.config = model, level, model.config
        self.support_size, self.image_size, self.batch_size = support_size, image_size, batch_size

    def __call__(self, t, si, sm):
        return self.model(t, si, sm).half().float()


def _fake_compile(model, backend="tvm", level="O2", support_size=None, image_size=None, batch_size=1, **kw):
    assert backend == "tvm"
    return FakeCompiled(model, level, support_size, image_size or tuple(model.config.input_size), batch_size)


def _config(tmp_path, **over):
    root = tmp_path / "tasks"
    make_task(root, "alpha", n=5, labels=1, size=(32, 32))
    data = {
        "tasks": [{"path": str(root / "alpha")}],
        "models": [{"name": "universeg-tiny"}],
        "backends": ["eager"],
        "perturbations": ["gaussian_noise", "label_noise"],
        "severities": [1, 3],
        "where": ["target", "support_masks", "both"],
        "support_size": 2,
        "num_targets": 2,
        "saliency": False,
        "out_dir": str(tmp_path / "out"),
    }
    data.update(over)
    return load_study_config(data=data)


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_study_cases_leave_out_impossible_combinations(tmp_path):
    cfg = _config(tmp_path)
    cases = study_cases(cfg)
    assert cases[0] == ("none", 0, "none")
    # gaussian noise on target and both, label noise on support_masks and both, 2 severities each
    assert sorted(cases[1:]) == sorted(
        [("gaussian_noise", s, w) for w in ("target", "both") for s in (1, 3)]
        + [("label_noise", s, w) for w in ("support_masks", "both") for s in (1, 3)]
    )


def test_end_to_end_csv_plots_agreement_and_resume(tmp_path, monkeypatch):
    monkeypatch.setattr(universeg_plus.backends, "compile", _fake_compile)
    cfg = _config(tmp_path, backends=["eager", "tvm-O2"], saliency=True, severities=[2], where=["target", "support_masks"])
    res = run_study(cfg, progress=False)
    out = tmp_path / "out"
    rows = _read(out / "results.csv")
    assert tuple(rows[0]) == COLUMNS
    n_cases = len(study_cases(cfg))
    assert len(rows) == res.rows_written == n_cases * 2 * 2  # cases x targets x backends
    for name in ("summary.md", "dice_drop_heatmap.png", "saliency.png", "dice_vs_severity_target.png",
                 "dice_vs_severity_support_masks.png"):
        assert (out / name).stat().st_size > 0, name
    eager = [r for r in rows if r["backend"] == "eager"]
    tvm = [r for r in rows if r["backend"] == "tvm-O2"]
    assert all(r["agreement_dice"] == "" and r["saliency_rmse"] != "" for r in eager)
    assert all(float(r["saliency_rmse"]) == 0.0 for r in eager if r["perturbation"] == "none")
    assert any(float(r["saliency_rmse"]) > 0.0 for r in eager if r["perturbation"] != "none")
    # float16 rounding of the logits: masks nearly identical, probabilities within 1e-3
    assert all(float(r["agreement_dice"]) > 0.9 and float(r["max_abs_dprob"]) < 1e-3 for r in tvm)
    for r in rows:
        assert 0.0 <= float(r["dice"]) <= 1.0 and float(r["inference_ms"]) > 0
    summary = (out / "summary.md").read_text()
    assert "## Compilation" in summary and "tvm-O2" in summary

    # resume: nothing recomputed, nothing duplicated
    again = run_study(cfg, progress=False, write_report=False)
    assert again.rows_written == 0 and again.rows_skipped == len(rows)
    assert len(_read(out / "results.csv")) == len(rows)

    # an interrupted run: the last row half-written, the one before it missing
    text = (out / "results.csv").read_text().splitlines(keepends=True)
    (out / "results.csv").write_text("".join(text[:-2]) + text[-1][:10])
    third = run_study(cfg, progress=False, write_report=False)
    assert third.rows_written == 2
    final = _read(out / "results.csv")
    keys = [tuple(r[k] for k in COLUMNS[:7]) for r in final]
    assert len(final) == len(rows) and len(set(keys)) == len(keys)


def test_seeded_runs_are_identical_and_tvm_absence_is_skipped(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tvm", None)  # as if Apache TVM were not installed: `import tvm` fails
    a = _config(tmp_path, backends=["eager", "tvm-O1"], perturbations=["motion"], severities=[2], where=["target"])
    with caplog.at_level(logging.WARNING):
        res = run_study(a, progress=False, write_report=False)
    assert "tvm-O1" in res.skipped_backends and res.backends == ["eager"]
    assert any("skipping backend tvm-O1" in m for m in caplog.messages)
    b = a.model_copy(update={"out_dir": str(tmp_path / "out2")})
    run_study(b, progress=False, write_report=False)
    ra, rb = _read(tmp_path / "out" / "results.csv"), _read(tmp_path / "out2" / "results.csv")
    drop = {"inference_ms"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in ra] == [
        {k: v for k, v in r.items() if k not in drop} for r in rb
    ]


def test_config_validation(tmp_path):
    with pytest.raises(ValueError, match="backend"):
        _config(tmp_path, backends=["tvm-O9"])
    with pytest.raises(ValueError, match="unknown perturbation"):
        _config(tmp_path / "b", perturbations=["snow"])
    with pytest.raises(ValueError, match="severity"):
        _config(tmp_path / "c", severities=[0])
    with pytest.raises(ValueError, match="where"):
        _config(tmp_path / "d", where=["everywhere"])
    with pytest.raises(ValueError, match="colour"):
        _config(tmp_path / "e", colour="red")
    with pytest.raises(FileNotFoundError):
        load_study_config(tmp_path / "missing.yaml")
    cfg_file = tmp_path / "study.yaml"
    cfg_file.write_text("tasks: [{path: tasks/x}]\nmodels: [{name: universeg-tiny}]\nout_dir: res\n")
    cfg = load_study_config(cfg_file, ["num_targets=3"])
    assert cfg.tasks[0].path == str(tmp_path / "tasks" / "x") and cfg.out_dir == str(tmp_path / "res")
    assert cfg.num_targets == 3


def test_too_small_task_is_a_clear_error(tmp_path):
    cfg = _config(tmp_path, num_targets=4, support_size=2)
    with pytest.raises(ValueError, match="fewer than num_targets"):
        run_study(cfg, progress=False, write_report=False)


def test_summary_numbers_from_a_known_csv(tmp_path):
    path = tmp_path / "results.csv"
    lines = [",".join(COLUMNS)]
    for backend, dprob, ms in (("eager", "", 10), ("tvm-O3", "0.01", 5)):
        agree = "" if backend == "eager" else "0.98"
        lines.append(f"t,m,{backend},none,0,none,x,0.9,0.8,0.9,0.9,2,{ms},{agree},{dprob},0")
        pert_dice = 0.6 if backend == "eager" else 0.5
        lines.append(f"t,m,{backend},motion,5,target,x,{pert_dice},0.5,0.6,0.9,inf,{ms},{agree},{dprob},0.2")
    path.write_text("\n".join(lines) + "\n")
    rows = load_results(path)
    assert math.isclose(rows[1]["dice_drop"], 0.3, abs_tol=1e-9)
    text = summarize(rows)
    assert "| motion | target | 0.300 |" in text  # eager drop at the top severity
    assert "| m | tvm-O3 | 0.980 | 0.980 | 0.01 | 0.100 | 0.100 | 2.00 |" in text
    assert "at most 0.100" in text


def test_cli_runs_and_reports_errors(tmp_path, capsys):
    cfg_file = tmp_path / "study.yaml"
    make_task(tmp_path / "tasks", "alpha", n=4, labels=1, size=(32, 32))
    cfg_file.write_text(
        "tasks: [{path: tasks/alpha}]\nmodels: [{name: universeg-tiny}]\nperturbations: [intensity_shift]\n"
        "severities: [5]\nwhere: [support_images]\nsupport_size: 2\nnum_targets: 1\nsaliency: false\n"
    )
    assert main(["robustness", "--config", str(cfg_file), "--no-progress", "--out-dir", str(tmp_path / "o")]) == 0
    assert "2 new row(s)" in capsys.readouterr().out
    # with progress: the bar names the model and the task it is on
    assert main(["robustness", "--config", str(cfg_file), "--out-dir", str(tmp_path / "p")]) == 0
    assert "universeg-tiny on alpha" in capsys.readouterr().err
    assert main(["robustness", "--config", str(cfg_file), "--report-only", "--out-dir", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "dice_vs_severity_support_images.png").exists()
    assert main(["robustness", "--config", str(cfg_file), "--set", "severities=[7]"]) == 2
    assert "severity" in capsys.readouterr().err
