"""Building task folders from public sources (universeg_plus.data.public, `universeg-plus build-tasks`).

No real download: a file server on 127.0.0.1 serves small fake sources in the layout of the real
ones (repository files under ``/<owner>/<repo>/<commit>/<path>``, a wheel holding the same member
paths as the nilearn/stardist wheels, a Debian package holding the mricron-data paths).
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from hub_server import LocalServer, QuietHandler
from universeg_plus.data.public import build_tasks, load_manifest
from universeg_plus.data.public.archives import deb_member
from universeg_plus.data.public.recipes import decode_mask
from universeg_plus.data.tasks import load_task_folder

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = load_manifest()


class FileServer(LocalServer):
    """Serves ``answer(path) -> bytes | None`` on 127.0.0.1 (None: 404) and records every request path."""

    def __init__(self, answer: Callable[[str], bytes | None]) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                path = unquote(self.path)
                server.requests.append(path)
                body = answer(path)
                self.send_response(404 if body is None else 200)
                self.send_header("Content-Length", "0" if body is None else str(len(body)))
                self.end_headers()
                if body is not None:
                    self.wfile.write(body)

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return self.root


def _png(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _rgb_image(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return np.stack([yy * 255 // h, xx * 255 // w, np.full((h, w), 90)], -1).astype(np.uint8)


# ---------------------------------------------------------------------- the shipped manifest
def test_shipped_manifest_names_sources_licences_and_labels():
    assert len(MANIFEST) == 25 and sum(len(e["pairs"]) for e in MANIFEST.values()) == 1313
    for name, e in MANIFEST.items():
        assert e["license"] and e["dataset"] and e["labels"], name
        fetch = e["fetch"]
        if fetch["kind"] == "github":
            assert re.fullmatch(r"[0-9a-f]{40}", fetch["commit"]) and "/" in fetch["repo"], name
        else:
            assert re.fullmatch(r"[0-9a-f]{64}", fetch["sha256"]) and fetch["url"].startswith("{"), name
        labels = {int(k) for k in e["labels"]}
        for group in (e.get("binary_tasks") or {}).values():
            assert set(group) <= labels, name
        stems = [p["stem"] for p in e["pairs"]]
        assert len(set(stems)) == len(stems), name
        for p in e["pairs"]:
            assert {int(k) for k in p["label_pixels"]} <= labels | {0}, (name, p["stem"])
            assert max(p["shape"]) <= 256, (name, p["stem"])
    # metadata only: the package holds no image data
    assert not list((ROOT / "universeg_plus" / "data" / "public").glob("*.png"))


def test_decode_mask_rules():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[0, :3] = (250, 5, 0)  # near red
    rgb[1, :3] = (0, 240, 10)  # near green
    rgb[2, :] = (20, 10, 0)  # near black
    got = decode_mask(Image.fromarray(rgb), {"colours": [[[0, 255, 0], 1], [[255, 0, 0], 2]], "merge": {"2": 1}})
    assert got.dtype == np.uint8 and got[0, :3].tolist() == [1, 1, 1] and got[1, :3].tolist() == [1, 1, 1]
    assert not got[2:].any()
    ring = np.zeros((9, 9), np.uint8)
    ring[2, 2:7] = ring[6, 2:7] = ring[2:7, 2] = ring[2:7, 6] = 255
    filled = decode_mask(Image.fromarray(ring), {"threshold": 127, "fill_holes": True})
    assert filled[2:7, 2:7].all() and filled.sum() == 25
    dark = decode_mask(Image.fromarray(255 - ring), {"below": 128})
    assert dark.sum() == (ring > 0).sum()
    with pytest.raises(ValueError, match="unknown mask rule"):
        decode_mask(Image.fromarray(ring), {"nope": 1})


# ---------------------------------------------------------------------- GitHub repository files
def _github_answer(entry: dict, shape: tuple[int, int], missing: str | None = None) -> Callable[[str], bytes | None]:
    """Fake repository files for ``entry``: RGB images, masks drawn in the entry's rule (colour or grey)."""
    fetch = entry["fetch"]
    prefix = f"/gh/{fetch['repo']}/{fetch['commit']}/{fetch['root']}"
    rule = entry["recipe"]["mask"]
    files = {p["image"]: "image" for p in entry["pairs"]} | {p["mask"]: "mask" for p in entry["pairs"]}
    h, w = shape

    def answer(path: str) -> bytes | None:
        rel = path.removeprefix(prefix)
        if not path.startswith(prefix) or rel not in files or rel == missing:
            return None
        fmt = "JPEG" if rel.lower().endswith((".jpg", ".jpeg")) else "PNG"
        if files[rel] == "image":
            return _png(_rgb_image(h, w), fmt)
        if "colours" in rule:
            mask = np.zeros((h, w, 3), np.uint8)
            mask[h // 4 : h // 2, w // 4 : w // 2] = rule["colours"][0][0]
            mask[h // 2 : 3 * h // 4, w // 2 : 3 * w // 4] = rule["colours"][-1][0]
        else:
            mask = np.zeros((h, w), np.uint8)
            mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
        return _png(mask, fmt)

    return answer


def test_cli_builds_a_github_task_from_a_local_server(tmp_path):
    """The user path, in a fresh process: `universeg-plus build-tasks --only ... --mirror github=...`."""
    entry = MANIFEST["busi_breast_lesion_us"]  # colour masks, two labels merged into one, non-square sources
    with FileServer(_github_answer(entry, (300, 400))) as server:
        cmd = [sys.executable, "-m", "universeg_plus", "build-tasks", "--out", str(tmp_path / "tasks"),
               "--only", "busi_breast_lesion_us", "--mirror", f"github={server.url}/gh", "--workers", "4"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        n = len(entry["pairs"])
        assert server.requests and all(r.startswith("/gh/sarah-antillia/") for r in server.requests)
        assert len(set(server.requests)) == 2 * n
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert again.returncode == 0 and "skipped" in again.stdout and len(server.requests) == 2 * n
    assert f"busi_breast_lesion_us: {n} pairs" in proc.stdout
    folder = tmp_path / "tasks" / "busi_breast_lesion_us"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["n_pairs"] == n and meta["license"] == entry["license"] and meta["labels"] == entry["labels"]
    assert meta["pairs_matching_manifest"] == 0, "fake images cannot match the project's counts"
    stem = entry["pairs"][0]["stem"]
    image = Image.open(folder / "images" / f"{stem}.png")
    mask = np.asarray(Image.open(folder / "masks" / f"{stem}.png"))
    assert image.mode == "L" and image.size == (256, 192)  # 400x300 -> longer side 256, rounded
    assert mask.shape == (192, 256) and set(np.unique(mask).tolist()) == {0, 1}  # label 2 merged into 1
    tasks = load_task_folder(folder, size=(64, 64))
    assert len(tasks) == 1 and len(tasks[0]) == n
    assert not list((tmp_path / "tasks").glob(".*.partial")) and not list(tmp_path.glob("*.png"))


def test_missing_file_fails_the_task_and_leaves_no_partial_folder(tmp_path):
    entry = MANIFEST["msd_spleen_ct"]
    missing = entry["pairs"][3]["mask"]
    with FileServer(_github_answer(entry, (64, 64), missing=missing)) as server:
        with pytest.raises(FileNotFoundError, match=r"HTTP 404.*" + re.escape(missing.split("/")[-1])):
            build_tasks(tmp_path, ["msd_spleen_ct"], mirrors={"github": server.url + "/gh"}, workers=2)
    assert not (tmp_path / "msd_spleen_ct").exists() and not list(tmp_path.glob(".*.partial"))
    with pytest.raises(ValueError, match="unknown task.*no_such_task.*choose from: acdc_cardiac_mri"):
        build_tasks(tmp_path, ["no_such_task"])
    with pytest.raises(ValueError, match="unknown mirror"):
        build_tasks(tmp_path, ["msd_spleen_ct"], mirrors={"gitlab": "http://127.0.0.1:1"})


def _small(name: str, n: int) -> dict:
    entry = copy.deepcopy(MANIFEST[name])
    entry["pairs"] = entry["pairs"][:n]
    return entry


def test_tiles_fill_and_layers_recipes(tmp_path):
    isbi, fly = _small("isbi2012_em_membranes", 4), _small("drosophila_vnc_em", 4)
    hc18 = _small("hc18_fetal_head_us", 1)
    section = (np.random.default_rng(0).random((512, 512)) * 255).astype(np.uint8)
    label = np.full((512, 512), 255, np.uint8)
    label[::16] = 0  # dark membrane lines
    big = (np.random.default_rng(1).random((1024, 1024)) * 255).astype(np.uint8)
    membranes = np.full((1024, 1024), 255, np.uint8)
    membranes[np.arange(1024) % 8 < 2] = 0  # membrane = the rarer value, black here
    mito = np.zeros((1024, 1024), np.uint8)
    mito[100:200, 100:200] = 255
    synapse = np.zeros((1024, 1024), np.uint8)
    synapse[150:170, 150:170] = 255  # overlaps mitochondria: synapse wins
    outline = np.zeros((300, 200), np.uint8)
    outline[50, 40:160] = outline[250, 40:160] = outline[50:251, 40] = outline[50:251, 159] = 255
    files = {
        f"/gh/zhixuhao/unet/{isbi['fetch']['commit']}/data/membrane/train/image/0.png": _png(section),
        f"/gh/zhixuhao/unet/{isbi['fetch']['commit']}/data/membrane/train/label/0.png": _png(label),
        f"/gh/unidesigner/groundtruth-drosophila-vnc/{fly['fetch']['commit']}/stack1/raw/00.tif": _png(big, "TIFF"),
    }
    for layer, arr in (("membranes", membranes), ("mitochondria", mito), ("synapses", synapse)):
        files[f"/gh/unidesigner/groundtruth-drosophila-vnc/{fly['fetch']['commit']}/stack1/{layer}/00.png"] = _png(arr)
    hp = hc18["pairs"][0]
    hc18_root = f"/gh/medical-images-process/VCLab_HC18/{hc18['fetch']['commit']}/{hc18['fetch']['root']}"
    for key, arr in (("image", _rgb_image(300, 200)), ("mask", outline)):
        files[hc18_root + hp[key]] = _png(arr)
    manifest = {e["name"]: e for e in (isbi, fly, hc18)}
    with FileServer(files.get) as server:
        reports = build_tasks(tmp_path, mirrors={"github": server.url + "/gh"}, manifest=manifest)
    assert [r.pairs for r in reports] == [4, 1, 4]  # sorted: drosophila, hc18, isbi
    tile = np.asarray(Image.open(tmp_path / "isbi2012_em_membranes" / "masks" / "s00_r000_c256.png"))
    np.testing.assert_array_equal(tile, (label[:256, 256:] < 128).astype(np.uint8))
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "isbi2012_em_membranes" / "images" / "s00_r000_c256.png")), section[:256, 256:]
    )
    fly_mask = np.asarray(Image.open(tmp_path / "drosophila_vnc_em" / "masks" / f"{fly['pairs'][0]['stem']}.png"))
    assert fly_mask.shape == (256, 256)  # 512 tiles downsampled x2
    # nearest x2: output pixel i reads source pixel 2i + 1
    assert fly_mask[0, 5] == 1 and fly_mask[60, 60] == 2 and fly_mask[80, 80] == 3 and fly_mask[3, 3] == 0
    head = np.asarray(Image.open(tmp_path / "hc18_fetal_head_us" / "masks" / f"{hp['stem']}.png"))
    assert head.shape == (256, 171) and head[128, 85] == 1 and head[5, 5] == 0  # outline filled, then shrunk


# ---------------------------------------------------------------------- wheels and Debian packages
def _nifti_gz(arr: np.ndarray) -> bytes:
    return gzip.compress(nib.Nifti1Image(arr, np.eye(4)).to_bytes())


def _fake_deb(members: dict[str, bytes]) -> bytes:
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w:xz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    def ar_member(name: str, data: bytes) -> bytes:
        head = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        return head + data + (b"\n" if len(data) % 2 else b"")

    return b"!<arch>\n" + ar_member("debian-binary", b"2.0\n") + ar_member("data.tar.xz", tar_buf.getvalue())


def test_wheel_and_debian_sources_in_their_real_layout(tmp_path):
    rng = np.random.default_rng(0)
    t1 = (rng.random((20, 24, 22)) * 255).astype(np.uint8)
    gm = np.zeros_like(t1)
    gm[5:10] = 200
    wm = np.zeros_like(t1)
    wm[8:12] = 200  # overlaps gm at 8, 9: white matter wins
    mni = _small("mni152_brain_tissue_mri", 0)
    mni["pairs"] = [{"stem": "sagittal_009", "shape": [22, 24], "label_pixels": {}}]
    wheel_buf = io.BytesIO()
    with zipfile.ZipFile(wheel_buf, "w") as zf:
        for k, arr in (("t1", t1), ("gm", gm), ("wm", wm)):
            zf.writestr(mni["recipe"]["files"][k], _nifti_gz(arr))
    wheel = wheel_buf.getvalue()
    mni["fetch"]["sha256"] = hashlib.sha256(wheel).hexdigest()

    ch2 = (rng.random((18, 20, 16)) * 200).astype(np.uint8)
    aal = (rng.random((18, 20, 16)) * 5).astype(np.uint8)
    colin = _small("colin27_aal_mri", 0)
    colin["pairs"] = [{"stem": "axial_004", "shape": [20, 18], "label_pixels": {}}]
    deb = _fake_deb({colin["recipe"]["image"]: _nifti_gz(ch2), colin["recipe"]["labels"]: _nifti_gz(aal)})
    assert deb_member_bytes(deb, colin["recipe"]["labels"], tmp_path) == _nifti_gz(aal)
    colin["fetch"]["sha256"] = hashlib.sha256(deb).hexdigest()

    wheel_path = "/pypi" + mni["fetch"]["url"].removeprefix("{pypi}")
    deb_path = "/debian" + colin["fetch"]["url"].removeprefix("{debian}")
    files = {wheel_path: wheel, deb_path: deb}
    mirrors = lambda url: {"pypi": url + "/pypi", "debian": url + "/debian"}  # noqa: E731
    manifest = {"mni152_brain_tissue_mri": mni, "colin27_aal_mri": colin}
    with FileServer(files.get) as server:
        build_tasks(tmp_path / "a", mirrors=mirrors(server.url), manifest=manifest)
        assert sorted(server.requests) == sorted(files)
    mask = np.asarray(Image.open(tmp_path / "a" / "mni152_brain_tissue_mri" / "masks" / "sagittal_009.png"))
    np.testing.assert_array_equal(mask, np.rot90(np.where(wm[9] >= 128, 2, np.where(gm[9] >= 128, 1, np.where(
        t1[9] / t1.max() > 0.2, 3, 0)))))
    image = np.asarray(Image.open(tmp_path / "a" / "colin27_aal_mri" / "images" / "axial_004.png"))
    lo, hi = np.percentile(ch2[ch2 > 0], [0.5, 99.5])
    np.testing.assert_array_equal(image, np.floor(np.clip((np.rot90(ch2[:, :, 4]) - lo) / (hi - lo), 0, 1) * 255))
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "a" / "colin27_aal_mri" / "masks" / "axial_004.png")), np.rot90(aal[:, :, 4])
    )

    # a tampered download is refused, named, and not kept
    files[wheel_path] = wheel + b"tampered"
    with FileServer(files.get) as server:
        with pytest.raises(RuntimeError, match=r"sha256 mismatch for http://127\.0\.0\.1:\d+/pypi/.*nilearn"):
            build_tasks(tmp_path / "b", ["mni152_brain_tissue_mri"], mirrors=mirrors(server.url), manifest=manifest)
    assert not list((tmp_path / "b" / ".downloads").rglob("*.whl"))


def deb_member_bytes(deb: bytes, name: str, tmp: Path) -> bytes:
    path = tmp / "fake.deb"
    path.write_bytes(deb)
    try:
        return deb_member(path, name)
    finally:
        os.unlink(path)

