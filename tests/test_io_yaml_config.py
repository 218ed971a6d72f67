"""The one YAML config loader: overrides, environment variables, errors that name the key and the file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from universeg_plus.io.yaml_config import apply_overrides, expand_env, load_yaml_config, read_yaml_mapping

ROOT = Path(__file__).resolve().parents[1]


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    root: str | None = None
    steps: int = 1


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "x"
    data: Inner = Inner()
    items: list[str] = []


def test_expand_env_set_unset_default_and_empty():
    env = {"A": "/data", "EMPTY": ""}
    got = expand_env(
        {"a": "${A}/tasks", "b": "${B:-fallback}", "c": "${EMPTY:-dflt}", "d": "${EMPTY}", "e": ["x${A}", 3],
         "f": "$A stays", "g": None},
        environ=env,
    )
    assert got == {"a": "/data/tasks", "b": "fallback", "c": "dflt", "d": "", "e": ["x/data", 3],
                   "f": "$A stays", "g": None}


def test_unset_variable_names_key_variable_and_file():
    with pytest.raises(ValueError, match=r"data\.items\[1\] in cfg\.yaml .*NOPE_VAR_XYZ, which is not set"):
        expand_env({"data": {"items": ["ok", "${NOPE_VAR_XYZ}"]}}, "cfg.yaml", environ={})


def test_load_applies_overrides_then_expands_and_validates(tmp_path, monkeypatch):
    monkeypatch.setenv("UP_TEST_ROOT", "/mnt/tasks")
    monkeypatch.delenv("UP_TEST_UNSET", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text("name: ${UP_TEST_UNSET:-run}\ndata:\n  root: ${UP_TEST_ROOT}\n")
    cfg = load_yaml_config(Outer, path, ["data.steps=${UP_TEST_STEPS:-5}", "items=[a, '${UP_TEST_ROOT}']"])
    assert cfg == Outer(name="run", data=Inner(root="/mnt/tasks", steps=5), items=["a", "/mnt/tasks"])
    assert load_yaml_config(Outer, data={"data": {"root": "r"}}).data.root == "r"
    assert load_yaml_config(Outer) == Outer()


def test_errors_name_key_and_file(tmp_path, monkeypatch):
    monkeypatch.delenv("UP_TEST_UNSET", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  stepz: 3\n  steps: -x\n")
    with pytest.raises(ValueError, match=r"(?s)invalid thing \(.*c\.yaml\):.*data\.steps: .*data\.stepz: "):
        load_yaml_config(Outer, path, what="thing")
    path.write_text("data:\n  root: ${UP_TEST_UNSET}\n")
    with pytest.raises(ValueError, match=r"data\.root in .*c\.yaml names the environment variable UP_TEST_UNSET"):
        load_yaml_config(Outer, path)
    with pytest.raises(FileNotFoundError, match="thing file .*missing.yaml does not exist"):
        load_yaml_config(Outer, tmp_path / "missing.yaml", what="thing")
    path.write_text("a: [1\n")
    with pytest.raises(ValueError, match="cannot parse"):
        read_yaml_mapping(path)
    path.write_text("- 1\n")
    with pytest.raises(ValueError, match="mapping"):
        read_yaml_mapping(path)
    path.write_text("")
    assert read_yaml_mapping(path) == {}


@pytest.mark.parametrize(
    "override, match", [("x", "key=value"), ("a..b=1", "empty key"), ("a.b.c=1", "'b' is a value")]
)
def test_override_errors(override, match):
    with pytest.raises(ValueError, match=match):
        apply_overrides({"a": {"b": 1}}, [override])


def test_overrides_copy_and_parse_yaml():
    data = {"a": {"b": 1}}
    assert apply_overrides(data, ["a.c=[1, 2]", "d.e=null", "f=[unclosed"]) == {
        "a": {"b": 1, "c": [1, 2]}, "d": {"e": None}, "f": "[unclosed"}
    assert data == {"a": {"b": 1}}


def _configs() -> list[Path]:
    return sorted((ROOT / "configs").glob("*.yaml")) + [ROOT / "examples" / "robustness_study.yaml"]


@pytest.mark.parametrize("path", _configs(), ids=lambda p: p.name)
def test_shipped_configs_hold_no_absolute_paths(path):
    import yaml

    def strings(node):
        if isinstance(node, dict):
            for v in node.values():
                yield from strings(v)
        elif isinstance(node, list):
            for v in node:
                yield from strings(v)
        elif isinstance(node, str):
            yield node

    absolute = [s for s in strings(yaml.safe_load(path.read_text())) if os.path.isabs(s.split("=", 1)[-1])]
    assert not absolute, f"{path.name} holds absolute paths {absolute}"


def _print_config(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "universeg_plus", "train", "--print-config", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_cli_takes_the_data_root_from_the_environment(tmp_path):
    import json

    env = {k: v for k, v in os.environ.items() if k != "UNIVERSEG_PLUS_TASKS"}
    default = _print_config("--config", "configs/universeg-v1.yaml", env=env)
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout)["data"]["root"] == "../shared/data/tasks"
    moved = _print_config("--config", "configs/universeg-v1.yaml", env={**env, "UNIVERSEG_PLUS_TASKS": "/srv/tasks"})
    assert json.loads(moved.stdout)["data"]["root"] == "/srv/tasks"
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  root: ${UNIVERSEG_PLUS_TASKS}\n")
    failed = _print_config("--config", str(bad), env=env)
    assert failed.returncode == 2
    assert "data.root" in failed.stderr and "UNIVERSEG_PLUS_TASKS" in failed.stderr and "Traceback" not in failed.stderr
