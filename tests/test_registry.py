import json
import re
from pathlib import Path

import pytest

from universeg_plus import create_model, get_config, list_models, list_pretrained

REQUIRED = {
    "universeg-v1",
    "universeg-v1-relu",
    "universeg-v1-gelu",
    "universeg-v1-cross-act",
    "universeg-v1-no-outconv",
    "universeg-small",
    "universeg-tiny",
}


def test_required_variants_registered():
    assert REQUIRED <= set(list_models())


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        create_model("universeg-v7")
    msg = str(err.value)
    assert "universeg-v7" in msg
    for name in REQUIRED:
        assert name in msg


def test_overrides_are_validated():
    m = create_model("universeg-v1", encoder_blocks=(16, 16, 16, 16))
    assert m.config.encoder_blocks == (16, 16, 16, 16)
    with pytest.raises(ValueError, match="encoder_blocks"):
        get_config("universeg-v1", encoder_blocks=(16, 0))
    with pytest.raises(ValueError, match="nonsense"):
        get_config("universeg-v1", nonsense=3)


def test_pretrained_unknown_is_clear():
    names = set(list_pretrained())
    missing = next(n for n in sorted(REQUIRED) if n not in names)
    with pytest.raises(ValueError, match="no pretrained weights"):
        create_model(missing, pretrained=True)


@pytest.mark.parametrize("name", list_models())
def test_model_config_travels(name):
    model = create_model(name)
    assert model.config == get_config(name)


def test_pretrained_auto_falls_back_with_a_warning(caplog):
    missing = next(n for n in sorted(REQUIRED) if n not in set(list_pretrained()))
    with caplog.at_level("WARNING", logger="universeg_plus.factory"):
        model = create_model(missing, pretrained="auto")
    assert model.config == get_config(missing)
    assert "randomly initialised" in caplog.text


def test_default_model_has_weights_when_any_are_declared():
    from universeg_plus import default_model_name

    name = default_model_name()
    assert name in list_models()
    if list_pretrained():
        assert name in list_models(pretrained=True)


def test_default_model_is_the_best_with_weights_from_the_table(monkeypatch):
    import universeg_plus
    from universeg_plus import registry
    from universeg_plus.registry import FALLBACK_MODEL, PRETRAINED, PretrainedEntry, default_model_name

    # today: universeg-small is the only model with weights (weights/universeg-small/README.md, S=16)
    assert default_model_name() == "universeg-small" == universeg_plus.default_model_name()
    # the table's figure is the model card's headline (mean over the held-out tasks at S=16)
    card = (Path(__file__).resolve().parents[1] / "weights" / "universeg-small" / "README.md").read_text()
    headline = re.search(r"At S=16, mean Dice over \d+ held-out tasks: universeg ([0-9.]+)", card)
    assert headline and PRETRAINED["universeg-small"].heldout_dice == float(headline.group(1))

    def entry(model, dice):
        return PretrainedEntry(model=model, local_dir=model, heldout_dice=dice)

    monkeypatch.setattr(registry, "PRETRAINED", {})
    assert default_model_name() == FALLBACK_MODEL == "universeg-v1"
    registry.PRETRAINED.update({"universeg-tiny": entry("universeg-tiny", None)})
    assert default_model_name() == "universeg-tiny"  # unmeasured, but the only one with weights
    registry.PRETRAINED.update({"universeg-v1-gelu": entry("universeg-v1-gelu", 0.41)})
    assert default_model_name() == "universeg-v1-gelu"  # a measured figure beats none
    registry.PRETRAINED.update({"universeg-v1": entry("universeg-v1", 0.62)})
    assert default_model_name() == "universeg-v1"  # the highest held-out Dice
    registry.PRETRAINED.update({"universeg-v1-relu": entry("universeg-v1-relu", 0.62)})
    assert default_model_name() == "universeg-v1"  # a tie goes to the first name in sorted order
    with pytest.raises(ValueError, match="less than or equal to 1"):
        entry("universeg-v1", 1.5)


def _cli(*args):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "universeg_plus", *args], cwd=root, env=env, capture_output=True, text=True,
        timeout=300, check=True,
    ).stdout


def test_models_command_shows_weights_default_licence_and_citation():
    import json

    from universeg_plus.registry import PRETRAINED, default_model_name

    text = _cli("models")
    table = text.split("\n\n")[0]  # one line per variant, then a paragraph per set of weights
    lines = {line.split()[0]: line for line in table.splitlines()}
    default = default_model_name()
    assert "(default)" in lines[default]
    assert [n for n, line in lines.items() if "(default)" in line] == [default]
    assert sorted(lines) == list_models()
    for name in list_models():
        assert ("pretrained" in lines[name]) == (name in PRETRAINED), lines[name]
    entry = PRETRAINED[default]
    assert f"held-out Dice {entry.heldout_dice:.3f}" in lines[default]
    assert f"{default} weights: licence: {entry.license}" in text
    assert f"{default} weights: cite: {entry.citation}" in text

    data = json.loads(_cli("models", "--json"))
    assert sorted(data) == list_models()
    assert [n for n, d in data.items() if d["default"]] == [default]
    assert data[default]["pretrained"]["heldout_dice"] == entry.heldout_dice
    assert data[default]["pretrained"]["license"] == entry.license
    assert all(d["pretrained"] is None for n, d in data.items() if n not in PRETRAINED)
    assert data["universeg-v1"]["config"] == get_config("universeg-v1").model_dump(mode="json")


def test_example_command_defaults_to_the_default_model():
    from universeg_plus import default_model_name
    from universeg_plus.cli import build_parser

    assert build_parser().parse_args(["example"]).model == default_model_name()


def test_create_model_has_one_import_path():
    """The registry is data only: the old ``registry.create_model`` shim is gone (it closed an import cycle)."""
    import universeg_plus
    from universeg_plus import factory, registry

    assert universeg_plus.create_model is factory.create_model
    with pytest.raises(AttributeError, match="create_model"):
        registry.create_model  # noqa: B018



def test_one_environment_variable_makes_any_model_the_default_of_api_cli_and_demo(tmp_path):
    """``UNIVERSEG_PLUS_DEFAULT_MODEL`` (read in registry.default_model_name only), in a fresh process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import universeg_plus, json\n"
        "from universeg_plus.demo.models import default_model_name as demo_default\n"
        "from universeg_plus.cli import build_parser\n"
        "print(json.dumps([universeg_plus.default_model_name(), demo_default(['universeg-small', 'universeg-tiny']),"
        " build_parser().parse_args(['example']).model]))\n"
    )
    root = Path(__file__).resolve().parents[1]

    def run(value: str | None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "UNIVERSEG_PLUS_DEFAULT_MODEL"}
        env["PYTHONPATH"] = str(root)
        if value is not None:
            env["UNIVERSEG_PLUS_DEFAULT_MODEL"] = value
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)

    chosen = run("universeg-tiny")
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout) == ["universeg-tiny"] * 3
    measured = run(None)
    assert json.loads(measured.stdout) == ["universeg-small"] * 3  # the best held-out Dice among the weights
    bad = run("universeg-huge")
    assert bad.returncode != 0
    assert "UNIVERSEG_PLUS_DEFAULT_MODEL='universeg-huge' is not a registered model; valid names:" in bad.stderr
