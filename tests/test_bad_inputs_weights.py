"""Bad weights files are refused with an error that names the file and what was expected (issue 14).

Cases: a weights file changed after it was saved (the ``.sha256`` sidecar that save_pretrained
writes), a folder with nothing to check against (said, not silent), a malformed sidecar, NaN or
infinite weights, and a file that is not a PyTorch checkpoint given to convert-official.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import pytest
import torch

from universeg_plus import UniverSegPlus, create_model
from universeg_plus.cli import main
from universeg_plus.factory import convert_official, from_pretrained
from universeg_plus.hub import save_pretrained, sha256_file
from universeg_plus.hub.folder import load_folder as hub_load_folder
from universeg_plus.hub.files import read_sha256_sidecar, sha256_sidecar
from universeg_plus.registry import PRETRAINED
from universeg_plus.train.checkpoint import warm_start


def load_folder(directory, **kwargs) -> UniverSegPlus:
    """The hub's folder loader with the network class handed to it (the hub never imports it)."""
    return hub_load_folder(directory, model_cls=UniverSegPlus, **kwargs)


def _tiny(seed: int = 0) -> UniverSegPlus:
    torch.manual_seed(seed)
    return create_model("universeg-tiny").eval()


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # same size; the last byte belongs to the last tensor's data
    path.write_bytes(bytes(data))


# -- the .sha256 sidecar ---------------------------------------------------------------------------


def test_save_pretrained_records_the_weights_hash(tmp_path):
    saved = save_pretrained(_tiny(), tmp_path / "w")
    side = sha256_sidecar(saved.weights)
    assert side.name == "model.safetensors.sha256"
    assert side.read_text() == f"{saved.sha256}  model.safetensors\n"  # `sha256sum -c` format
    assert read_sha256_sidecar(saved.weights) == saved.sha256 == sha256_file(saved.weights)
    # overwriting rewrites it for the new weights
    again = save_pretrained(_tiny(1), tmp_path / "w", overwrite=True)
    assert again.sha256 != saved.sha256 and read_sha256_sidecar(again.weights) == again.sha256


@pytest.mark.parametrize(
    "load",
    [
        pytest.param(lambda d: load_folder(d), id="load_folder"),
        pytest.param(lambda d: from_pretrained(d), id="from_pretrained"),
        pytest.param(lambda d: UniverSegPlus.from_pretrained(str(d)), id="UniverSegPlus.from_pretrained"),
        pytest.param(lambda d: warm_start(create_model("universeg-tiny"), d), id="train --init (warm_start)"),
    ],
)
def test_one_changed_byte_is_refused_by_every_folder_load(tmp_path, load):
    saved = save_pretrained(_tiny(), tmp_path / "w")
    _flip_one_byte(saved.weights)
    with pytest.raises(ValueError, match="sha256 mismatch") as err:
        load(saved.directory)
    msg = str(err.value)
    assert str(saved.weights) in msg
    assert f"expected {saved.sha256}, got {sha256_file(saved.weights)}" in msg
    assert "recorded in model.safetensors.sha256" in msg and "nothing was deleted" in msg
    assert saved.weights.is_file()


def test_a_truncated_file_is_refused_by_its_hash_before_it_is_read(tmp_path):
    saved = save_pretrained(_tiny(), tmp_path / "w")
    saved.weights.write_bytes(saved.weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"sha256 mismatch for .*model\.safetensors"):
        load_folder(saved.directory)


def test_a_folder_without_a_hash_is_loaded_with_a_warning_saying_so(tmp_path, caplog):
    model = _tiny()
    saved = save_pretrained(model, tmp_path / "w")
    sha256_sidecar(saved.weights).unlink()
    with caplog.at_level(logging.WARNING, logger="universeg_plus.hub.files"):
        loaded = load_folder(saved.directory)
    assert "no sha256 to check against" in caplog.text and "loading it unverified" in caplog.text
    assert "model.safetensors.sha256" in caplog.text
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v, atol=0, rtol=0)
    # an explicit hash is enough: no warning then
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="universeg_plus.hub.files"):
        load_folder(saved.directory, sha256=saved.sha256)
    assert "unverified" not in caplog.text


def test_an_explicit_hash_and_the_sidecar_must_both_match(tmp_path):
    saved = save_pretrained(_tiny(), tmp_path / "w")
    with pytest.raises(ValueError, match=f"expected {'a' * 64}, got {saved.sha256}"):
        load_folder(saved.directory, sha256="a" * 64)
    sha256_sidecar(saved.weights).write_text("b" * 64 + "  model.safetensors\n")
    with pytest.raises(ValueError, match=f"recorded in model.safetensors.sha256.*expected {'b' * 64}, got {saved.sha256}"):
        load_folder(saved.directory, sha256=saved.sha256)


def test_a_malformed_sidecar_is_named(tmp_path):
    saved = save_pretrained(_tiny(), tmp_path / "w")
    sha256_sidecar(saved.weights).write_text("not a hash\n")
    with pytest.raises(ValueError, match=r"model\.safetensors\.sha256 should start with the 64-hex SHA-256") as err:
        load_folder(saved.directory)
    assert "'not'" in str(err.value)


def test_the_shipped_weights_carry_a_sidecar_equal_to_the_table_pin():
    from universeg_plus.hub import find_shipped_weights

    for name, entry in PRETRAINED.items():
        if entry.local_dir is None:
            continue
        folder = find_shipped_weights(entry.local_dir, entry.filename)
        assert folder is not None, f"shipped weights of {name} not found"
        assert read_sha256_sidecar(folder / entry.filename) == entry.sha256 == sha256_file(folder / entry.filename)


# -- non-finite weights ----------------------------------------------------------------------------


def _poisoned(tmp_path: Path, values: dict[str, float]) -> Path:
    """A saved folder (with a matching sidecar: the file is what was saved) whose tensors hold ``values``."""
    model = _tiny()
    with torch.no_grad():
        for name, value in values.items():
            model.state_dict()[name].fill_(value)
    return save_pretrained(model, tmp_path / "w").directory


def test_all_nan_weights_are_refused_naming_every_tensor(tmp_path):
    keys = sorted(_tiny().state_dict())
    folder = _poisoned(tmp_path, dict.fromkeys(keys, math.nan))
    with pytest.raises(ValueError, match="holds NaN or infinite values") as err:
        load_folder(folder)
    msg = str(err.value)
    assert f"in {len(keys)} of {len(keys)} tensors" in msg
    first = _tiny().state_dict()[keys[0]]
    assert f"{keys[0]} ({first.numel()} of {first.numel()})" in msg
    assert str(folder / "model.safetensors") in msg


def test_one_inf_and_one_nan_are_refused_naming_the_two_tensors(tmp_path):
    state = _tiny().state_dict()
    a, b = "enc_blocks.0.cross.cross_conv.bias", "out_conv.conv.weight"
    assert a in state and b in state
    folder = _poisoned(tmp_path, {a: math.inf, b: math.nan})
    for load in (load_folder, from_pretrained):
        with pytest.raises(ValueError, match=r"holds NaN or infinite values in 2 of") as err:
            load(folder)
        assert a in str(err.value) and b in str(err.value)


def test_convert_official_refuses_non_finite_weights(tmp_path):
    sd = create_model("universeg-v1").state_dict()
    sd["out_conv.conv.bias"] = torch.full_like(sd["out_conv.conv.bias"], math.nan)
    torch.save(sd, tmp_path / "nan.pt")
    with pytest.raises(ValueError, match=r"nan\.pt .*NaN or infinite values in 1 of .*out_conv\.conv\.bias \(1 of 1\)"):
        convert_official(tmp_path / "nan.pt", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- convert-official on something that is not a checkpoint -----------------------------------------


@pytest.mark.parametrize(
    "content, found",
    [
        (b"hello world, this is a text file\n", "text starting with 'hello world, thi'"),
        (b"", "an empty file"),
        (bytes(range(200, 256)), r"binary data starting with b'\\xc8\\xc9"),
    ],
    ids=["text", "empty", "binary"],
)
def test_convert_official_names_the_file_and_what_was_expected(tmp_path, capsys, content, found):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="is not a PyTorch checkpoint") as err:
        convert_official(path, tmp_path / "out")
    msg = str(err.value)
    assert str(path) in msg and "expected a file written by torch.save" in msg
    assert re.search(found, msg), msg
    assert main(["convert-official", str(path), str(tmp_path / "out")]) == 2
    err_text = capsys.readouterr().err
    assert "convert-official: error:" in err_text and "is not a PyTorch checkpoint" in err_text
    assert "KeyError" not in err_text and "Traceback" not in err_text
    assert not (tmp_path / "out").exists()
