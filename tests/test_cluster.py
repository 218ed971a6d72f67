"""segment_dataset: the work list, the report, and runs on one local Ray instance (127.0.0.1) per module.

The Ray tests compare every output byte for byte with what the single-process path writes
(``Predictor.predict_file``, the call ``universeg-plus segment`` makes), with the same model object.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from universeg_plus import create_model
from universeg_plus.cluster import Job, list_jobs, read_report, rerun_jobs, segment_dataset
from universeg_plus.cluster.report import write_report
from universeg_plus.io.atomic import PARTIAL_MARK

OPTIONS = dict(ensemble=2, support_size=2, flips=True, seed=3)


def _png(path, shape=(64, 64), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)).save(path)


def _support(root):
    rng = np.random.default_rng(0)
    for i in range(4):
        img = (rng.random((40, 48)) * 80).astype(np.uint8)
        m = np.zeros((40, 48), np.uint8)
        m[5 + 3 * i : 20 + 3 * i, 10:30] = 1
        img[m > 0] += 150
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / "images" / f"e{i}.png")
        Image.fromarray(m).save(root / "masks" / f"e{i}.png")
    return root


# ---------------------------------------------------------------------------- work list and report (no Ray)
def test_jobs_from_a_folder_a_glob_and_a_manifest(tmp_path):
    src = tmp_path / "in"
    _png(src / "a.png")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), np.int16), np.eye(4)), src / "b.nii.gz")
    np.save(src / "c.npy", np.zeros((8, 8, 5), np.float32))  # a volume: NPY back
    (src / "notes.txt").write_text("not an image")
    _png(src / "deep" / "a.png")
    out = tmp_path / "out"

    folder = list_jobs(src, out)
    assert [(j.input.name, j.output.relative_to(out).as_posix()) for j in folder] == [
        ("a.png", "a.png"), ("b.nii.gz", "b.nii.gz"), ("c.npy", "c.npy"),
    ]
    nested = list_jobs(f"{src}/**/a.png", out)
    assert [j.output.relative_to(out).as_posix() for j in nested] == ["a.png", "deep/a.png"]

    (tmp_path / "m.csv").write_text("path,output\nin/a.png,x/one.png\nin/deep/a.png,\n")
    manifest = list_jobs(tmp_path / "m.csv", out)
    assert manifest == [Job(tmp_path / "in/a.png", out / "x/one.png"), Job(tmp_path / "in/deep/a.png", out / "a.png")]
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet manifests need pyarrow (the [cluster] extra)")
    import pyarrow as pa

    pq.write_table(pa.table({"path": [str(src / "a.png")]}), tmp_path / "m.parquet")
    assert list_jobs(tmp_path / "m.parquet", out) == [Job(src / "a.png", out / "a.png")]


@pytest.mark.parametrize(
    "manifest, message",
    [
        ("file,output\na.png,\n", "needs a 'path' column"),
        ("path,output\na.png,../escape.png\n", "relative to the output folder"),
        ("path,output\na.png,same.png\nb.png,same.png\n", "would both be written to"),
    ],
)
def test_bad_manifests_are_refused_before_any_work(tmp_path, manifest, message):
    (tmp_path / "m.csv").write_text(manifest)
    with pytest.raises(ValueError, match=message):
        list_jobs(tmp_path / "m.csv", tmp_path / "out")


def test_two_inputs_with_one_output_name_are_named(tmp_path):
    _png(tmp_path / "in" / "a.png")
    _png(tmp_path / "in" / "a.jpg")
    with pytest.raises(ValueError, match=r"a\.jpg.*a\.png|a\.png.*a\.jpg"):
        list_jobs(tmp_path / "in", tmp_path / "out")


def test_rerun_jobs_are_the_failed_and_not_run_rows(tmp_path):
    rows = [
        {"input": "a.png", "output": "o/a.png", "status": "ok", "seconds": 0.1, "worker": "h:1"},
        {"input": "b.png", "output": "o/b.png", "status": "failed", "error": "ValueError: bad"},
        {"input": "c.png", "output": "o/c.png", "status": "skipped"},
        {"input": "d.png", "output": "o/x/d.png", "status": "not-run"},
    ]
    write_report(rows, tmp_path / "r.csv")
    assert [r["status"] for r in read_report(tmp_path / "r.csv")] == ["ok", "failed", "skipped", "not-run"]
    assert rerun_jobs(tmp_path / "r.csv") == [Job(Path("b.png"), Path("o/b.png")), Job(Path("d.png"), Path("o/x/d.png"))]


def test_missing_ray_names_the_extra(monkeypatch):
    from universeg_plus.cluster.session import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"universeg-plus\[cluster\]"):
        import_ray()


def test_a_bad_device_name_is_refused_before_any_work(tmp_path):
    src = tmp_path / "in"
    _png(src / "a.png")
    with pytest.raises(ValueError, match="'auto' or a torch device.*'gpu-please'"):
        segment_dataset(src, _support(tmp_path / "sup"), tmp_path / "out", device="gpu-please", progress=False)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- on a local Ray instance
@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the module (127.0.0.1 only, no dashboard, no usage stats)."""
    from universeg_plus.cluster.session import LOCAL_ONLY_ENV

    os.environ.setdefault(LOCAL_ONLY_ENV, "0")  # before ray is imported: bind 127.0.0.1 only
    pytest.importorskip("ray.data", reason="Ray is not installed: pip install 'universeg-plus[cluster]'")
    from universeg_plus.cluster.session import ray_session

    with ray_session(num_cpus=2) as ray:
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        yield ray


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("universeg-tiny")


def test_local_workers_keep_the_drivers_priority_and_resolve_auto_on_their_node(ray_local):
    """Ray lowers its workers to niceness 15 by default; beside CPU-bound jobs of the same session (one
    scheduler autogroup) they then get a few percent of a core, and a run of 21 inputs made no progress in
    300 s. A local instance keeps them at the driver's niceness. ``auto`` is resolved by the worker: its
    Ray GPU when it has one, else the CPU (this one has none)."""
    from universeg_plus.cluster.worker import worker_device

    @ray_local.remote(num_cpus=1)
    def on_a_worker():
        return os.nice(0), worker_device("auto"), worker_device("cpu")

    assert ray_local.get(on_a_worker.remote(), timeout=120) == (os.nice(0), "cpu", "cpu")


def _reference(model, support_dir, inputs, out):
    """What the single-process path writes for ``inputs`` (name -> bytes)."""
    from universeg_plus.predictor import Predictor
    from universeg_plus.support import SupportSet

    pred = Predictor(model, device="cpu")
    pred.set_support(SupportSet.from_folder(support_dir, size=pred.input_size))
    for job in inputs:
        pred.predict_file(job.input, out / job.output.name, **OPTIONS)
    return {p.name: p.read_bytes() for p in out.iterdir()}


def _outputs(out):
    return {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".csv"}


def test_run_matches_one_process_reports_bad_input_skips_and_reruns(ray_local, model, tmp_path):
    sup = _support(tmp_path / "sup")
    src = tmp_path / "in"
    for i in range(5):
        _png(src / f"img{i}.png", (50 + 3 * i, 61), seed=i)
    affine = np.diag([0.7, 0.8, 3.0, 1.0])
    affine[:3, 3] = [10, -20, 5]
    nib.save(nib.Nifti1Image((np.random.default_rng(9).random((30, 26, 3)) * 400).astype(np.int16), affine),
             src / "scan.nii.gz")
    (src / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    good = [j for j in list_jobs(src, out) if j.input.name != "broken.png"]
    expected = _reference(model, sup, good, tmp_path / "ref")

    run = segment_dataset(src, sup, out, model=model, num_workers=2, progress=False, **OPTIONS)
    assert run.counts == {"ok": 6, "failed": 1}
    bad = run.failed[0]
    assert bad["input"].endswith("broken.png") and "cannot read" in bad["error"] and bad["status"] == "failed"
    assert _outputs(out) == expected  # byte-identical, the NIfTI's affine included
    np.testing.assert_allclose(nib.load(out / "scan.nii.gz").affine, affine)
    assert all(r["worker"] and float(r["seconds"]) > 0 for r in read_report(run.report))

    _png(src / "broken.png", (33, 35), seed=7)  # fixed: only it is rerun, into the same report
    fixed = segment_dataset(None, sup, out, model=model, only_failed=run.report, progress=False, **OPTIONS)
    assert fixed.report == run.report and fixed.counts == {"ok": 7}
    assert [r["worker"] for r in fixed.rows][1:] == [r["worker"] for r in run.rows][1:]  # the others kept
    assert np.asarray(Image.open(out / "broken.png")).shape == (33, 35)

    again = segment_dataset(src, sup, out, model=model, skip_existing=True, progress=False, **OPTIONS)
    assert again.counts == {"skipped": 7} and again.ray_start_seconds == 0.0  # nothing left: Ray not needed


def _busy_worker_pids() -> list[int]:
    """Actor processes running a task: Ray titles them ``ray::MapWorker(MapBatches(SegmentWorker)).submit``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"SegmentWorker)).submit" in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:  # gone meanwhile
            continue
    return sorted(pids)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker process through /proc (Linux)")
def test_a_killed_worker_is_retried_and_every_output_is_written_once(ray_local, model, tmp_path):
    sup = _support(tmp_path / "sup")
    src = tmp_path / "in"
    n = 12
    for i in range(n):
        _png(src / f"t{i:02d}.png", seed=100 + i)
    out = tmp_path / "out"
    expected = _reference(model, sup, list_jobs(src, out), tmp_path / "ref")
    killed: list[tuple[int, int]] = []

    def kill_one_worker_mid_run():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            done = len(list(out.glob("*.png"))) if out.is_dir() else 0
            pids = _busy_worker_pids() if done else []
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append((pids[0], done))
            time.sleep(0.005)

    killer = threading.Thread(target=kill_one_worker_mid_run, daemon=True)
    killer.start()
    run = segment_dataset(src, sup, out, model=model, num_workers=2, progress=False, **OPTIONS)
    killer.join(timeout=5)
    assert killed and killed[0][1] < n, f"no worker was killed mid-run: {killed}"
    assert run.counts == {"ok": n}
    assert _outputs(out) == expected
    assert not [p for p in out.iterdir() if PARTIAL_MARK in p.name]  # the killed writer's temporary is gone
