from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from universeg_plus.cli import main
from universeg_plus.train.config import apply_overrides, load_run_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["tiny.yaml", "universeg-small-cpu.yaml", "universeg-v1.yaml"])
def test_shipped_configs_validate(name):
    """Every value written in the shipped YAML reaches the validated config unchanged (none dropped or renamed)."""
    import yaml

    cfg = load_run_config(CONFIGS / name)
    raw = yaml.safe_load((CONFIGS / name).read_text())
    dumped = cfg.model_dump(mode="json")

    def leaves(tree, path=()):
        for key, value in tree.items():
            if isinstance(value, dict) and value and key != "overrides":
                yield from leaves(value, (*path, key))
            else:
                yield (*path, key), value

    checked = 0
    for path, value in leaves(raw):
        got = dumped
        for key in path:
            assert key in got, f"{name}: {'.'.join(path)} is not a config field"
            got = got[key]
        want = list(value) if isinstance(value, tuple) else value
        if isinstance(want, str):  # ${VAR:-default} is read from the environment
            want = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m[1], m[2]), want)
        assert got == want or (isinstance(want, (int, float)) and got == pytest.approx(want)), (path, got, want)
        checked += 1
    assert checked >= 5, f"{name}: only {checked} values found"
    # the repo's split (universeg_plus/data/splits.json): validate on the validation datasets, never the held-out ones
    assert cfg.data.val_tasks == ("acdc_cardiac_mri", "hc18_fetal_head_us", "glas_gland_he", "ms_lesion_flair_mri")
    assert "msd_spleen_ct" in cfg.data.held_out and len(cfg.data.held_out) == 6


def test_overrides_parse_yaml_values_and_nest():
    cfg = load_run_config(
        CONFIGS / "tiny.yaml",
        [
            "train.steps=7",
            "data.root=/x/y",
            "episodes.s_max=9",
            "data.val_tasks=[a, b]",
            "optim.grad_clip=null",
            "model.overrides.activation=relu",
            "data.size=[16,16]",
        ],
    )
    assert cfg.train.steps == 7 and cfg.data.root == "/x/y" and cfg.episodes.s_max == 9
    assert cfg.data.val_tasks == ("a", "b") and cfg.optim.grad_clip is None
    assert cfg.model_config_resolved().activation == "relu"
    assert cfg.image_size == (16, 16)
    assert apply_overrides({"a": {"b": 1}}, ["a.c=x"]) == {"a": {"b": 1, "c": "x"}}


@pytest.mark.parametrize(
    "override, match",
    [
        ("train.stepz=3", "train.stepz"),
        ("episodes.s_min=10", "s_min"),
        ("optim.lr=-1", "optim.lr"),
        ("model.name=nope", "unknown model"),
        ("data.include=[msd_spleen_ct]", "held-out"),
        ("data.include=[glas_gland_he]", "validation"),
        ("data.val_tasks=[msd_spleen_ct]", "model selection must not read what evaluation scores"),
        ("train.amp=fp8", "train.amp"),
        ("steps", "key=value"),
        ("train..steps=1", "empty key"),
        ("seed.x=1", "not a section"),
    ],
)
def test_invalid_configs_name_the_problem(override, match):
    with pytest.raises(ValueError, match=match):
        load_run_config(CONFIGS / "tiny.yaml", [override])


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_run_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_run_config(tmp_path / "list.yaml")


def test_cli_print_config_and_user_errors(capsys):
    assert main(["train", "--config", str(CONFIGS / "tiny.yaml"), "--set", "train.steps=3", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["train"]["steps"] == 3
    assert main(["train", "--config", str(CONFIGS / "tiny.yaml"), "--set", "episodes.batch_size=0"]) == 2
    err = capsys.readouterr().err
    assert "episodes.batch_size" in err and "Traceback" not in err
