"""Pretrained weights: folder format, hub download over HTTP (127.0.0.1 mock hub), shipped weights, official import."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
import torch

from hub_server import MockHub
from universeg_plus import UniverSegPlus, create_model
from universeg_plus.cli import main
from universeg_plus.factory import convert_official, from_pretrained
from universeg_plus.hub import WEIGHTS_DIR_ENV, read_config, save_pretrained, sha256_file
from universeg_plus.hub.folder import load_folder as hub_load_folder
from universeg_plus.hub.files import sha256_sidecar
from universeg_plus.registry import PRETRAINED, PretrainedEntry

REPO = "lab/universeg-tiny-ft"


def load_folder(directory, **kwargs) -> UniverSegPlus:
    """The hub's folder loader with the network class handed to it (the hub never imports it)."""
    return hub_load_folder(directory, model_cls=UniverSegPlus, **kwargs)


def _tiny(seed: int = 0) -> UniverSegPlus:
    torch.manual_seed(seed)
    return create_model("universeg-tiny").eval()


def _folder_bytes(model: UniverSegPlus, tmp: Path) -> dict[str, bytes]:
    saved = save_pretrained(model, tmp)
    return {p.name: p.read_bytes() for p in (saved.weights, saved.config, saved.card)}


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], atol=0, rtol=0)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The mock hub, with huggingface_hub pointed at it, online, and a fresh cache."""
    server = MockHub().start()
    monkeypatch.setattr(hf_constants, "ENDPOINT", server.url)
    template = server.url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path / "no-shipped-weights"))
    yield server
    server.stop()


@pytest.fixture
def published(hub, tmp_path):
    """A fine-tuned tiny model committed to the mock hub: (model, commit, weights sha256)."""
    model = _tiny(1)
    files = _folder_bytes(model, tmp_path / "publish")
    commit = hub.commit(REPO, files)
    return model, commit, sha256_file(tmp_path / "publish" / "model.safetensors")


# -- folder format -----------------------------------------------------------------------------------


def test_save_pretrained_roundtrip_and_outputs(tmp_path):
    model = _tiny(3)
    saved = model.save_pretrained(tmp_path / "w")
    assert saved.sha256 == sha256_file(saved.weights) and len(saved.sha256) == 64
    assert read_config(saved.config) == model.config
    assert json.loads(saved.config.read_text()) == model.config.model_dump(mode="json")
    assert saved.sha256 in saved.card.read_text()
    assert not [p.name for p in saved.directory.iterdir() if p.name.endswith(".tmp")]
    loaded = UniverSegPlus.from_pretrained(str(tmp_path / "w"), sha256=saved.sha256, mode="pairwise")
    _assert_same_weights(model, loaded)
    assert loaded.mode == "pairwise"
    g = torch.Generator().manual_seed(0)
    t, si = torch.rand(1, 1, 32, 32, generator=g), torch.rand(1, 3, 1, 32, 32, generator=g)
    sl = (torch.rand(1, 3, 1, 32, 32, generator=g) > 0.5).float()
    with torch.no_grad():
        torch.testing.assert_close(loaded(t, si, sl), model(t, si, sl), atol=1e-5, rtol=0)
    with pytest.raises(FileExistsError, match="overwrite"):
        save_pretrained(model, tmp_path / "w")
    assert save_pretrained(_tiny(4), tmp_path / "w", overwrite=True).sha256 != saved.sha256


def test_local_folder_errors_name_the_file(tmp_path):
    saved = save_pretrained(_tiny(), tmp_path / "w")
    data = saved.weights.read_bytes()
    with pytest.raises(ValueError, match="sha256 mismatch") as err:
        load_folder(saved.directory, sha256="0" * 64)
    assert "0" * 64 in str(err.value) and saved.sha256 in str(err.value)
    # without the .sha256 sidecar (which would refuse the file first: tests/test_bad_inputs_weights.py),
    # reading a damaged file must still name it
    sha256_sidecar(saved.weights).unlink()
    saved.weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"model\.safetensors is not a valid safetensors file"):
        load_folder(saved.directory)
    saved.weights.write_bytes(data)
    saved.config.write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        load_folder(saved.directory)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_folder(tmp_path / "nowhere")


def test_wrong_architecture_names_keys(tmp_path):
    saved = save_pretrained(_tiny(), tmp_path / "w")
    other = create_model("universeg-tiny", encoder_blocks=(8, 16, 8))
    saved.config.write_text(json.dumps(other.config.model_dump(mode="json")))
    with pytest.raises(ValueError, match="does not fit this architecture") as err:
        load_folder(saved.directory)
    msg = str(err.value)
    assert "shape mismatches: " in msg and "missing keys" not in msg
    assert "enc_blocks.1.cross.cross_conv.bias (file (8,), model (16,))" in msg
    two_level = create_model("universeg-tiny", encoder_blocks=(8, 8))
    saved.config.write_text(json.dumps(two_level.config.model_dump(mode="json")))
    with pytest.raises(ValueError, match="unexpected keys: dec_blocks.1.cross.cross_conv.bias"):
        load_folder(saved.directory)


# -- hub download over HTTP ------------------------------------------------------------------------


def test_first_download_then_offline_load_makes_zero_requests(hub, published, monkeypatch):
    model, commit, _ = published
    got = UniverSegPlus.from_pretrained(REPO)
    _assert_same_weights(model, got)
    paths = {p for _, p in hub.requests}
    assert f"/{REPO}/resolve/main/model.safetensors" in paths
    assert f"/{REPO}/resolve/{commit}/config.json" in paths  # config pinned to the weights' commit
    assert ("GET", f"/{REPO}/resolve/main/model.safetensors") in hub.requests
    n = len(hub.requests)

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    _assert_same_weights(model, UniverSegPlus.from_pretrained(REPO))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    _assert_same_weights(model, UniverSegPlus.from_pretrained(REPO, local_files_only=True))
    _assert_same_weights(model, UniverSegPlus.from_pretrained(REPO, revision=commit))  # pinned + cached
    assert len(hub.requests) == n


def test_revision_pinning(hub, published, tmp_path):
    model, commit, _ = published
    newer = _tiny(7)
    hub.commit(REPO, _folder_bytes(newer, tmp_path / "v2"))
    _assert_same_weights(newer, from_pretrained(REPO))
    _assert_same_weights(model, from_pretrained(REPO, revision=commit))
    with pytest.raises(FileNotFoundError, match="revision 'v9' does not exist"):
        from_pretrained(REPO, revision="v9")


def test_tampered_file_is_refused_and_nothing_deleted(hub, published):
    _, _, good_sha = published
    committed = hub.repos[REPO]["commits"][hub.repos[REPO]["branches"]["main"]]["model.safetensors"]
    bad = bytearray(committed)
    bad[-1] ^= 0xFF  # same size, one flipped byte in the last tensor
    hub.tampered[(REPO, "model.safetensors")] = bytes(bad)
    with pytest.raises(ValueError, match="sha256 mismatch") as err:
        from_pretrained(REPO)
    msg = str(err.value)
    bad_sha = __import__("hashlib").sha256(bytes(bad)).hexdigest()
    assert f"expected {good_sha}, got {bad_sha}" in msg
    cached = Path(msg.split("sha256 mismatch for ")[1].split(" (")[0])
    assert cached.is_file() and cached.read_bytes() == bytes(bad)  # left in place for inspection


def test_missing_repo_file_and_offline_not_cached(hub, published, monkeypatch):
    with pytest.raises(FileNotFoundError, match="'lab/nope'.*was not found"):
        from_pretrained("lab/nope")
    hub.commit("lab/config-only", {"config.json": b"{}"})
    with pytest.raises(FileNotFoundError, match="'model.safetensors' does not exist in hub repo 'lab/config-only'"):
        from_pretrained("lab/config-only")
    with pytest.raises(FileNotFoundError, match="neither an existing folder"):
        from_pretrained("not-a-folder-or-repo")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    n = len(hub.requests)
    with pytest.raises(FileNotFoundError, match=r"not in the local cache .* offline mode is on"):
        from_pretrained(REPO)
    assert len(hub.requests) == n


def test_create_model_pretrained_via_table_entry(hub, published, monkeypatch, tmp_path):
    model, commit, sha = published
    entry = PretrainedEntry(model="universeg-tiny", hub_id=REPO, revision=commit, sha256=sha, input_size=(32, 32))
    monkeypatch.setitem(PRETRAINED, "universeg-tiny", entry)
    _assert_same_weights(model, create_model("universeg-tiny", pretrained=True))
    n = len(hub.requests)
    _assert_same_weights(model, create_model("universeg-tiny", pretrained=True))
    assert len(hub.requests) == n  # pinned commit, cached: no network at all
    monkeypatch.setitem(PRETRAINED, "universeg-tiny", entry.model_copy(update={"sha256": "f" * 64}))
    with pytest.raises(ValueError, match=f"expected {'f' * 64}, got {sha}"):
        create_model("universeg-tiny", pretrained=True)
    # a repo whose config is another architecture than the table's model
    other = create_model("universeg-tiny", encoder_blocks=(8, 16, 8))
    c2 = hub.commit("lab/other", _folder_bytes(other, tmp_path / "other"))
    entry = PretrainedEntry(model="universeg-tiny", hub_id="lab/other", revision=c2, input_size=(32, 32))
    monkeypatch.setitem(PRETRAINED, "universeg-tiny", entry)
    with pytest.raises(ValueError, match="different architecture.*encoder_blocks"):
        create_model("universeg-tiny", pretrained=True)


def test_shipped_weights_found_without_network(hub, published, monkeypatch, tmp_path):
    shipped = _tiny(5)
    saved = save_pretrained(shipped, tmp_path / "shipped" / "universeg-tiny-demo")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path / "shipped"))
    _, commit, hub_sha = published
    entry = PretrainedEntry(
        model="universeg-tiny", hub_id=REPO, revision=commit, local_dir="universeg-tiny-demo", sha256=saved.sha256,
        input_size=(32, 32),
    )
    monkeypatch.setitem(PRETRAINED, "universeg-tiny", entry)
    n = len(hub.requests)
    _assert_same_weights(shipped, create_model("universeg-tiny", pretrained=True))
    assert len(hub.requests) == n
    # the shipped copy missing: falls back to the hub (and its hash is then checked too)
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path / "elsewhere"))
    monkeypatch.setitem(PRETRAINED, "universeg-tiny", entry.model_copy(update={"sha256": hub_sha}))
    _assert_same_weights(published[0], create_model("universeg-tiny", pretrained=True))
    assert len(hub.requests) > n


def test_push_to_hub_roundtrip(hub):
    model = _tiny(9)
    pushed = model.push_to_hub("me/pushed", token="hf_mock_token")
    assert pushed.commit == hub.repos["me/pushed"]["branches"]["main"]
    assert set(hub.repos["me/pushed"]["commits"][pushed.commit]) == {"config.json", "model.safetensors", "README.md"}
    _assert_same_weights(model, from_pretrained("me/pushed", sha256=pushed.sha256))


def test_cli_download_then_offline(hub, published, monkeypatch, capsys):
    _, _, sha = published
    assert main(["download", REPO]) == 0
    out = capsys.readouterr().out
    assert f"sha256  {sha}" in out
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    n = len(hub.requests)
    assert main(["download", REPO]) == 0
    assert len(hub.requests) == n
    assert main(["download", "lab/missing"]) == 2
    assert "not in the local cache" in capsys.readouterr().err


# -- the user's path: fresh processes, nothing imported by this test ------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _fresh(args: list[str], hub: MockHub, hf_home: Path, offline: bool = False) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` in a new interpreter, as a user would: huggingface_hub reads HF_ENDPOINT and
    HF_HUB_OFFLINE when it is imported, so they are set in the environment, not patched."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(
        PYTHONPATH=str(ROOT), HF_ENDPOINT=hub.url, HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1",
        UNIVERSEG_PLUS_WEIGHTS_DIR=str(hf_home / "no-shipped-weights"),
    )
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run(
        [sys.executable, *args], cwd=hf_home.parent, env=env, capture_output=True, text=True, timeout=300
    )


_LOAD = (
    "import sys, torch\n"
    "from universeg_plus import UniverSegPlus\n"
    "torch.save(UniverSegPlus.from_pretrained(sys.argv[1]).state_dict(), sys.argv[2])\n"
)


def test_fresh_process_download_then_offline_reload_makes_zero_requests(hub, published, tmp_path):
    model, _, sha = published
    home = tmp_path / "hf-home"
    first = _fresh(["-c", _LOAD, REPO, str(tmp_path / "online.pt")], hub, home)
    assert first.returncode == 0, first.stderr
    _assert_same_weights(model, _state_dict_model(tmp_path / "online.pt"))
    assert ("GET", f"/{REPO}/resolve/main/model.safetensors") in hub.requests
    assert (home / "hub").is_dir()  # the download went to the new HF_HOME's cache, not the user's
    n = len(hub.requests)
    again = _fresh(["-c", _LOAD, REPO, str(tmp_path / "offline.pt")], hub, home, offline=True)
    assert again.returncode == 0, again.stderr
    _assert_same_weights(model, _state_dict_model(tmp_path / "offline.pt"))
    assert len(hub.requests) == n, hub.requests[n:]

    # the CLI: `universeg-plus download` into another new cache, then an offline load from it
    home2 = tmp_path / "hf-home-2"
    cli = _fresh(["-m", "universeg_plus", "download", REPO], hub, home2)
    assert cli.returncode == 0, cli.stderr
    assert f"sha256  {sha}" in cli.stdout and str(home2 / "hub") in cli.stdout
    n = len(hub.requests)
    offline = _fresh(["-c", _LOAD, REPO, str(tmp_path / "cli.pt")], hub, home2, offline=True)
    assert offline.returncode == 0, offline.stderr
    _assert_same_weights(model, _state_dict_model(tmp_path / "cli.pt"))
    assert len(hub.requests) == n, hub.requests[n:]


def _state_dict_model(path: Path) -> UniverSegPlus:
    model = _tiny()
    model.load_state_dict(torch.load(path, weights_only=True))
    return model


# -- official checkpoint import -----------------------------------------------------------------


def _official_like(path: Path, name: str = "universeg-v1") -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    keys = {k: v.shape for k, v in create_model(name).state_dict().items()}
    sd = {k: torch.randn(s, generator=g) * 0.05 for k, s in keys.items()}
    torch.save(sd, path)
    return sd


def test_convert_official_cli_roundtrip(tmp_path, capsys):
    sd = _official_like(tmp_path / "universeg_v1_nf64_ss64_STA.pt")
    out = tmp_path / "converted"
    assert main(["convert-official", str(tmp_path / "universeg_v1_nf64_ss64_STA.pt"), str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"sha256 {sha256_file(out / 'model.safetensors')}" in printed
    assert read_config(out / "config.json") == create_model("universeg-v1").config
    model = load_folder(out)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, sd[k], atol=0, rtol=0)
    assert "universeg_v1_nf64_ss64_STA.pt" in (out / "README.md").read_text()
    assert main(["convert-official", str(tmp_path / "universeg_v1_nf64_ss64_STA.pt"), str(out)]) == 2  # exists


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_convert_official_refuses_code_running_pickles(tmp_path, how):
    marker = tmp_path / "pwned"
    payload = {"enc_blocks.0.cross.cross_conv.weight": torch.zeros(1), "x": _Evil(str(marker))}
    path = tmp_path / "evil.pt"
    if how == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    with pytest.raises(ValueError, match="refusing to load .*evil.pt.*nothing was executed"):
        convert_official(path, tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()
    if how == "pickle.dump":
        pickle.loads(path.read_bytes())  # an unrestricted unpickler would have run the payload
        assert marker.exists()


def test_convert_official_wrong_architecture_and_garbage(tmp_path):
    _official_like(tmp_path / "small.pt", "universeg-small")
    wrong = r"dec_blocks\.0\.cross\.cross_conv\.weight \(file \(32, 128, 3, 3\), model \(64, 256, 3, 3\)\)"
    with pytest.raises(ValueError, match=wrong):
        convert_official(tmp_path / "small.pt", tmp_path / "out")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="garbage.pt"):
        convert_official(tmp_path / "garbage.pt", tmp_path / "out")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="does not hold a state_dict"):
        convert_official(tmp_path / "list.pt", tmp_path / "out")
    assert not (tmp_path / "out").exists()
