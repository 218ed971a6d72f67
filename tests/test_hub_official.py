"""The official UniverSeg weights in one call (issue 23): downloaded once from a release URL, checked
against the pinned git blob id, read as tensors only, converted to safetensors in the user cache,
loaded offline afterwards; a tampered file is refused, deleted and named; offline says the ways out.

A 127.0.0.1 server plays the GitHub release, serving a checkpoint in the official layout (the
``universeg-v1`` architecture, 44 tensors, random weights, ``torch.save``'d state_dict). Every load
runs in a fresh interpreter. The test seam: the subprocess replaces the table entry's pin (git blob
id, URL) with the one the test computed for its own file, before anything else runs; the library
has no switch that weakens the pin.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hub_server import ReleaseServer

ROOT = Path(__file__).resolve().parents[1]
RELEASE_PATH = "/JJGO/UniverSeg/releases/download/weights/universeg_v1_nf64_ss64_STA.pt"

# What a user runs, after the seam: argv = [blob id, table url, mode, args...]
SCRIPT = """
import sys
from universeg_plus.registry import PRETRAINED
PRETRAINED["universeg-v1"] = PRETRAINED["universeg-v1"].model_copy(
    update={"git_blob_id": sys.argv[1], "url": sys.argv[2]})  # test seam: the pin of the test's own file
mode, args = sys.argv[3], sys.argv[4:]
if mode == "cli":
    from universeg_plus.cli import main
    raise SystemExit(main(args))
import torch
if mode == "create_model":
    from universeg_plus import create_model
    model = create_model("universeg-v1", pretrained=True)
else:
    from universeg_plus import UniverSegPlus
    model = UniverSegPlus.from_pretrained("universeg-v1")
torch.save(model.state_dict(), args[0])
"""


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> tuple[bytes, dict[str, torch.Tensor]]:
    """A checkpoint in the official layout: the bytes of ``torch.save(state_dict)`` and the state_dict."""
    from universeg_plus import create_model

    torch.manual_seed(3)
    state = create_model("universeg-v1").state_dict()
    assert len(state) == 44 and sum(t.numel() for t in state.values()) == 1_182_785
    path = tmp_path_factory.mktemp("official") / "universeg_v1_nf64_ss64_STA.pt"
    torch.save(state, path)
    return path.read_bytes(), state


def _run(tmp_path: Path, blob: str, url: str, mode: str, *args: str, offline: bool = False, **env: str):
    environ = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "UNIVERSEG_PLUS_OFFICIAL_URL")}
    environ.update(PYTHONPATH=str(ROOT), UNIVERSEG_PLUS_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1", **env)
    if offline:
        environ["HF_HUB_OFFLINE"] = "1"
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, blob, url, mode, *args], cwd=tmp_path, env=environ,
        capture_output=True, text=True, timeout=300,
    )


def _same(state_path: Path, expected: dict[str, torch.Tensor]) -> None:
    got = torch.load(state_path, weights_only=True)
    assert got.keys() == expected.keys()
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], atol=0, rtol=0)


def _cache_folder(tmp_path: Path, blob: str) -> Path:
    return tmp_path / "cache" / f"universeg-v1-{blob[:12]}"


def test_first_use_downloads_verifies_converts_then_loads_offline_with_no_request(tmp_path, official):
    data, state = official
    blob = _blob_id(data)
    with ReleaseServer({RELEASE_PATH: data}) as server:
        url = server.url(RELEASE_PATH)
        first = _run(tmp_path, blob, url, "create_model", str(tmp_path / "a.pt"))
        assert first.returncode == 0, first.stderr
        assert server.requests == [("GET", RELEASE_PATH)]
        _same(tmp_path / "a.pt", state)
        # the licence and what was verified are shown on first download
        assert "Licence: the UniverSeg authors' terms" in first.stderr and blob in first.stderr
        folder = _cache_folder(tmp_path, blob)
        record = json.loads((folder / "source.json").read_text())
        assert record["git_blob_id"] == blob and record["official_release"] is True
        assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["size"] == len(data)
        assert sorted(p.name for p in folder.iterdir()) == [
            "README.md", "config.json", "model.safetensors", "model.safetensors.sha256", "source.json"
        ]  # the .pt is not kept

        # second use, offline, through the class method: no request, same weights, nothing logged about licences
        second = _run(tmp_path, blob, url, "from_pretrained", str(tmp_path / "b.pt"), offline=True)
        assert second.returncode == 0, second.stderr
        _same(tmp_path / "b.pt", state)
        assert "Licence" not in second.stderr
        # the CLI finds the same cache
        cli = _run(tmp_path, blob, url, "cli", "download", "universeg-v1", offline=True)
        assert cli.returncode == 0, cli.stderr
        assert f"weights {folder / 'model.safetensors'}" in cli.stdout and "licence" in cli.stdout
        assert server.requests == [("GET", RELEASE_PATH)]


def test_a_tampered_download_is_refused_deleted_and_named(tmp_path, official):
    data, _ = official
    blob = _blob_id(data)
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0x01
    with ReleaseServer({RELEASE_PATH: bytes(tampered)}) as server:
        url = server.url(RELEASE_PATH)
        run = _run(tmp_path, blob, url, "cli", "download", "universeg-v1")
        assert run.returncode == 2, run.stderr
        folder = _cache_folder(tmp_path, blob)
        err = " ".join(run.stderr.split())
        assert f"refused {folder / 'universeg_v1_nf64_ss64_STA.pt'} downloaded from {url}" in err
        assert f"expected {blob}" in err and f"git blob id {_blob_id(bytes(tampered))}" in err
        assert "It was deleted and not loaded" in err
        leftovers = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
        assert leftovers == []


def test_a_tampered_cache_is_refused_deleted_named_and_fetched_again(tmp_path, official):
    data, state = official
    blob = _blob_id(data)
    with ReleaseServer({RELEASE_PATH: data}) as server:
        url = server.url(RELEASE_PATH)
        assert _run(tmp_path, blob, url, "cli", "download", "universeg-v1").returncode == 0
        folder = _cache_folder(tmp_path, blob)
        weights = folder / "model.safetensors"
        raw = bytearray(weights.read_bytes())
        raw[-5] ^= 0x01
        weights.write_bytes(bytes(raw))
        refused = _run(tmp_path, blob, url, "from_pretrained", str(tmp_path / "x.pt"), offline=True)
        assert refused.returncode != 0
        assert f"refused the cached universeg-v1 weights: sha256 mismatch for {weights}" in refused.stderr
        assert f"The folder {folder} was deleted" in refused.stderr
        assert not folder.exists()
        again = _run(tmp_path, blob, url, "from_pretrained", str(tmp_path / "y.pt"))
        assert again.returncode == 0, again.stderr
        _same(tmp_path / "y.pt", state)
        assert len(server.requests) == 2


def test_offline_or_blocked_names_url_cache_and_both_ways_out_which_work(tmp_path, official):
    data, state = official
    blob = _blob_id(data)
    folder = _cache_folder(tmp_path, blob)
    with ReleaseServer({RELEASE_PATH: data}) as server:
        url = server.url(RELEASE_PATH)
        offline = _run(tmp_path, blob, url, "cli", "download", "universeg-v1", offline=True)
        blocked = _run(tmp_path, blob, "http://127.0.0.1:9/universeg_v1_nf64_ss64_STA.pt", "cli", "download",
                       "universeg-v1")
        assert server.requests == []
        for run, why in ((offline, "offline mode is on (HF_HUB_OFFLINE=1)"), (blocked, "could not be reached")):
            assert run.returncode == 2
            err = run.stderr
            assert why in err and str(folder) in err
            assert f"universeg-plus convert-official universeg_v1_nf64_ss64_STA.pt {folder}" in err
            assert "UNIVERSEG_PLUS_OFFICIAL_URL" in err and f"pinned git blob id {blob}" in err
        assert url in offline.stderr and "http://127.0.0.1:9/universeg_v1_nf64_ss64_STA.pt" in blocked.stderr

        # way out 2: a mirror (the table's address is blocked), still checked
        mirrored = _run(tmp_path, blob, "http://127.0.0.1:9/x.pt", "create_model", str(tmp_path / "m.pt"),
                        UNIVERSEG_PLUS_OFFICIAL_URL=url)
        assert mirrored.returncode == 0, mirrored.stderr
        _same(tmp_path / "m.pt", state)
        assert server.requests == [("GET", RELEASE_PATH)]

    # way out 1: the file fetched elsewhere, converted into the cache folder, then loaded offline
    import shutil

    shutil.rmtree(folder)
    checkpoint = tmp_path / "universeg_v1_nf64_ss64_STA.pt"
    checkpoint.write_bytes(data)
    converted = _run(tmp_path, blob, "http://127.0.0.1:9/x.pt", "cli", "convert-official", str(checkpoint),
                     str(folder), offline=True)
    assert converted.returncode == 0, converted.stderr
    assert f"source git blob id {blob} (the official release)" in converted.stdout
    loaded = _run(tmp_path, blob, "http://127.0.0.1:9/x.pt", "from_pretrained", str(tmp_path / "c.pt"), offline=True)
    assert loaded.returncode == 0, loaded.stderr
    _same(tmp_path / "c.pt", state)


def test_segment_offline_names_what_the_command_line_can_do(tmp_path, official):
    """``universeg-plus segment --model universeg-v1`` offline with nothing cached: the ways out are a command and
    an environment variable that exist (not only the ``cache_dir=`` keyword of the Python API)."""
    from PIL import Image

    blob = _blob_id(official[0])
    for sub in ("images", "masks"):
        (tmp_path / "sup" / sub).mkdir(parents=True)
    mask = torch.zeros(32, 32, dtype=torch.uint8)
    mask[4:20, 6:24] = 1
    Image.fromarray((mask * 200 + 20).numpy()).save(tmp_path / "sup" / "images" / "a.png")
    Image.fromarray(mask.numpy()).save(tmp_path / "sup" / "masks" / "a.png")
    run = _run(tmp_path, blob, "http://127.0.0.1:9/x.pt", "cli", "segment", "--model", "universeg-v1", "--support",
               str(tmp_path / "sup"), "--target", str(tmp_path / "sup" / "images"), "--out", str(tmp_path / "out"),
               offline=True)
    assert run.returncode == 2, run.stderr
    err = run.stderr
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in err and str(_cache_folder(tmp_path, blob)) in err
    assert "while online, run `universeg-plus download universeg-v1` once" in err
    cache = tmp_path / "cache"
    assert f"The cache folder is {cache}: set UNIVERSEG_PLUS_CACHE to use another, for every command" in err
    assert "universeg-plus convert-official" in err and "UNIVERSEG_PLUS_OFFICIAL_URL" in err
    assert "cache_dir says" not in err and "--cache-dir" not in err  # nothing `segment` does not have
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # nothing written
