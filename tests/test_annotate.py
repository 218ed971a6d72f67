"""Annotation sessions: edits and their cost, the session folder (atomic, locked, resumable), volumes, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from single_thread import one_thread  # noqa: F401  (autouse: one torch thread)

from universeg_plus.annotate import (
    AnnotationSession,
    SessionLocked,
    brush,
    click,
    edit_cost,
    entropy_score,
    label_dice,
    simulate,
    summarize,
    weights_sha256,
)

ROOT = Path(__file__).resolve().parents[1]


def _disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2).astype(np.uint8)


def _dataset(folder: Path, n: int = 5, shape=(40, 48), labels: int = 1) -> tuple[Path, Path]:
    """``n`` PNG images (bright discs on noise) in ``folder/images`` and label maps in ``folder/masks``."""
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        m = _disc(shape, (14 + 2 * i, 18 + 2 * i), 7 + i % 3)
        if labels == 2:
            m = m + _disc(shape, (14 + 2 * i, 18 + 2 * i), 3)
        img = (rng.random(shape) * 60 + 90 * (m > 0) + 40 * (m > 1)).astype(np.uint8)
        Image.fromarray(img).save(folder / "images" / f"case{i}.png")
        Image.fromarray(m.astype(np.uint8)).save(folder / "masks" / f"case{i}.png")
    return folder / "images", folder / "masks"


def _truth(masks: Path, name: str) -> np.ndarray:
    return np.asarray(Image.open(masks / f"{name}.png")).astype(np.int64)


# ---------------------------------------------------------------------- edits
def test_edit_cost_is_changed_pixels_over_foreground_capped_at_drawing():
    truth = np.zeros((10, 10), np.int64)
    truth[2:6, 2:7] = 1  # 20 pixels
    assert edit_cost(truth, truth) == 0.0
    assert edit_cost(np.zeros_like(truth), truth) == 1.0  # drawing from scratch
    half = truth.copy()
    half[2:4, 2:7] = 0  # 10 pixels missed
    assert edit_cost(half, truth) == pytest.approx(0.5, abs=1e-12)
    worse = np.ones_like(truth)  # 80 wrong pixels > 20 foreground: cleared and drawn instead
    assert edit_cost(worse, truth) == 1.0
    assert edit_cost(np.zeros_like(truth), np.zeros_like(truth)) == 0.0
    assert edit_cost(worse, np.zeros_like(truth)) == 1.0
    assert label_dice(half, truth) == pytest.approx(2 * 10 / 30, abs=1e-12)
    with pytest.raises(ValueError, match=r"proposal is \(10, 10\) but the accepted mask is \(5, 5\)"):
        edit_cost(truth, truth[:5, :5])


def test_clicks_add_the_probability_region_and_remove_the_region_under_them():
    probs = np.zeros((20, 20), np.float32)
    probs[3:8, 3:8] = 0.8  # one blob, not in the mask
    probs[12:16, 12:16] = 0.9  # another blob, far away
    mask = np.zeros((20, 20), np.int64)
    added = click(mask, 5, 5, positive=True, probabilities=probs)
    assert added.sum() == 25 and added[3:8, 3:8].all() and not added[12:, 12:].any()
    removed = click(added, 4, 4, positive=False)
    assert not removed.any()
    disc = click(mask, 15, 2, positive=True, probabilities=probs)  # where the model saw nothing: a small disc
    assert disc[15, 2] == 1 and 1 <= disc.sum() <= 9
    two = click(mask, 13, 13, positive=True, probabilities=np.stack([probs * 0, probs]), label=2, classes=[1, 2])
    assert set(np.unique(two)) == {0, 2} and two[12:16, 12:16].all()
    painted = brush(mask, [(10, 10)], radius=2, label=3)
    assert painted[10, 10] == 3 and painted.sum() == 3 * 13
    with pytest.raises(ValueError, match=r"outside the 20x20 image"):
        click(mask, 25, 3)
    assert entropy_score(np.full((4, 4), 0.5)) == pytest.approx(1.0, abs=1e-9)
    assert entropy_score(np.zeros((4, 4))) < 1e-4


# ---------------------------------------------------------------------- the session folder
def test_accept_edit_skip_undo_are_written_and_a_reopened_session_continues(tmp_path, model):
    images, masks = _dataset(tmp_path)
    folder = tmp_path / "session"
    with AnnotationSession(images, folder, model) as s:
        first = s.next_item()
        assert first.name == "case0" and s.propose().source == "none"  # nothing labelled: draw it
        rec = s.accept(_truth(masks, "case0"))
        assert rec.edit_cost == 1.0 and rec.edited and rec.step == 1 and rec.support == 0
        p = s.propose()
        assert p.source == "in-context" and p.support == 1 and p.mask.shape == (40, 48)
        rec = s.accept()  # the proposal as it is
        assert rec.name == "case1" and rec.edit_pixels == 0 and not rec.edited and rec.edit_cost == 0.0
        p = s.propose()
        edited = p.mask.copy()
        edited[:5, :5] = 1 - np.clip(edited[:5, :5], 0, 1)
        rec = s.accept(edited)
        assert rec.edit_pixels == 25 and rec.edited and rec.seconds is not None
        s.propose()
        assert s.skip().name == "case3"
        assert s.undo().name == "case3" and s.next_item().name == "case3"
        assert s.progress == {"accepted": 3, "skipped": 0, "pending": 2, "total": 5}
        with pytest.raises(ValueError, match="already accepted; undo"):
            s.accept(edited, 2)
        with pytest.raises(ValueError, match=r"must be \(40, 48\)"):
            s.accept(np.zeros((4, 4), np.uint8))
    saved = json.loads((folder / "session.json").read_text())
    assert saved["model"]["weights_sha256"] == weights_sha256(model)
    assert [it["state"] for it in saved["items"]] == ["accepted"] * 3 + ["pending"] * 2
    assert sorted(p.name for p in (folder / "masks").iterdir()) == ["case0.png", "case1.png", "case2.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "masks" / "case2.png")), edited)

    with AnnotationSession(images, folder, model) as s:  # resumed
        assert s.next_item().name == "case3" and len(s.support()) == 3
        np.testing.assert_array_equal(s.mask(2), edited)
        assert s.propose().support == 3


def test_one_folder_one_session_and_bad_session_files_are_refused_untouched(tmp_path, model):
    images, _ = _dataset(tmp_path, n=2)
    folder = tmp_path / "session"
    s = AnnotationSession(images, folder, model)
    with pytest.raises(SessionLocked, match=rf"session folder {folder} is in use by pid {os.getpid()}"):
        AnnotationSession(images, folder, model)
    s.close()
    AnnotationSession(images, folder, model).close()  # free again once closed

    bad_state = {"format": "universeg-plus-annotation", "version": 1, "source": {}, "model": {},
                 "items": [{"name": "case0", "state": "done"}]}
    for bad in ["{ not json", json.dumps({"format": "something else"}), json.dumps(bad_state)]:
        (folder / "session.json").write_text(bad)
        with pytest.raises(ValueError, match=rf"session file {folder / 'session.json'} is corrupt.*left as it is"):
            AnnotationSession(images, folder, model)
        assert (folder / "session.json").read_text() == bad
    other, _ = _dataset(tmp_path / "other", n=3)
    (folder / "session.json").unlink()
    AnnotationSession(images, folder, model).close()
    with pytest.raises(ValueError, match="belongs to another source"):
        AnnotationSession(other, folder, model)


_CHILD = textwrap.dedent("""
    import sys, time, numpy as np, torch
    from PIL import Image
    from universeg_plus import create_model
    from universeg_plus.annotate import AnnotationSession, store
    import universeg_plus.io.atomic as atomic
    images, masks, folder, where = sys.argv[1:5]
    torch.manual_seed(0)
    model = create_model("universeg-tiny").eval()
    calls = {"n": 0}
    real = {"json": store.atomic_write_text, "mask": store.write_png}[where]

    def patched(path, *args, **kwargs):  # the 4th write of its kind hangs halfway, until the kill
        calls["n"] += 1
        if calls["n"] < 4:
            return real(path, *args, **kwargs)
        with atomic.atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            print("MIDWRITE", flush=True)
            time.sleep(120)

    setattr(store, {"json": "atomic_write_text", "mask": "write_png"}[where], patched)
    with AnnotationSession(images, folder, model) as s:
        for item in s:
            s.propose(item)
            truth = np.asarray(Image.open(f"{masks}/{item.name}.png"))
            s.accept(truth)
            print("ACCEPTED", item.name, flush=True)
""")


@pytest.mark.parametrize("where", ["json", "mask"])
def test_a_session_killed_mid_write_resumes_with_nothing_lost_or_doubled(tmp_path, model, where):
    images, masks = _dataset(tmp_path, n=6)
    folder = tmp_path / "session"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(images), str(masks), str(folder), where],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("MIDWRITE"):
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert lines and lines[-1] == "MIDWRITE", f"child did not reach the write: {lines} {proc.stderr.read()[-2000:]}"
    done = [ln.split()[1] for ln in lines if ln.startswith("ACCEPTED")]
    assert len(done) >= 2, lines
    assert any(".partial-" in p.name for p in folder.rglob("*")), "the kill should leave a half-written temporary"

    with AnnotationSession(images, folder, model) as s:
        state = json.loads((folder / "session.json").read_text())  # a whole file, the last one written
        accepted = [it["name"] for it in state["items"] if it["state"] == "accepted"]
        assert accepted == done  # every accept that returned is there; the one being written is not
        assert not any(".partial-" in p.name for p in folder.rglob("*")), "the dead writer's temporaries are cleaned"
        rows = simulate(s, masks)
    assert [r.name for r in rows] == [f"case{i}" for i in range(len(done), 6)]
    state = json.loads((folder / "session.json").read_text())
    assert [it["state"] for it in state["items"]] == ["accepted"] * 6
    assert sorted(it["step"] for it in state["items"]) == list(range(1, 7))  # no answer doubled
    for it in state["items"]:
        np.testing.assert_array_equal(np.asarray(Image.open(folder / it["mask"])), _truth(masks, it["name"]))


def test_uncertain_order_uses_the_given_score_and_multi_label_items_work(tmp_path, model):
    images, masks = _dataset(tmp_path, n=5, labels=2)
    # the seam: any score of the probability map; here, higher for items whose proposal has more foreground
    with AnnotationSession(images, tmp_path / "s", model, order="uncertain",
                           uncertainty=lambda probs: float(np.asarray(probs).sum())) as s:
        assert s.next_item().name == "case0"  # nothing labelled: source order
        s.propose()
        s.accept(_truth(masks, "case0"))
        pending = [it for it in s.items if s.record(it).state == "pending"]
        sums = [float(s.proposer.fast.predict(s.image(it)).probabilities.sum()) for it in pending]
        assert s.next_item() == pending[int(np.argmax(sums))]
        p = s.propose()
        assert p.probabilities.shape == (2, 40, 48) and p.classes == [1, 2]
        rows = simulate(s, masks)
    assert len(rows) == 4 and all(r.support >= 1 for r in rows)
    assert 0.0 <= summarize(rows)["total_cost"] <= 1.0


def test_adapted_proposal_replaces_the_in_context_one_when_ready(tmp_path, model):
    images, masks = _dataset(tmp_path, n=3)
    with AnnotationSession(images, tmp_path / "s", model, adapt_steps=2, background=True, seed=0) as s:
        s.propose()
        s.accept(_truth(masks, "case0"))
        assert s.propose(refined=False).source == "in-context"
        assert s.propose(wait=True).source == "adapted"
        before = s.proposer.version
        s.accept(_truth(masks, "case1"))
        assert s.proposer.version == before + 1
        p = s.propose(wait=True)
        assert p.source == "adapted" and p.support == 2 and len(s.proposer.adapt_seconds) == 2


# ---------------------------------------------------------------------- volumes
def test_volume_label_slices_propagate_correct_and_propagate_again(tmp_path, model):
    shape = (36, 40, 9)
    vol = np.zeros(shape, np.float32)
    lab = np.zeros(shape, np.uint8)
    rng = np.random.default_rng(0)
    for z in range(shape[2]):
        lab[..., z] = _disc(shape[:2], (18, 20), 5 + z)
        vol[..., z] = rng.random(shape[:2]) * 50 + 100 * lab[..., z]
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    affine[:3, 3] = [10, -4, 7]
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(vol, affine), str(path))
    with AnnotationSession(path, tmp_path / "s", model, volume_support=2) as s:
        assert len(s.items) == 9 and s.items[4].name == "ct_2_0004"
        assert s.order == "spread" and s.next_item().slice == 4  # the middle slice first
        for z in (1, 7):
            s.propose(z)
            s.accept(lab[..., z], z)
        assert s.next_item().slice == 4  # then the slice farthest from every labelled one
        assert s.slice_support(3) == [1, 7] and s.slice_support(8) == [7, 1]
        out = s.propagate()
        assert out == tmp_path / "s" / "ct_labels.nii.gz"
        img = nib.load(str(out))
        np.testing.assert_allclose(img.affine, affine)
        got = np.asarray(img.dataobj)
        assert got.shape == shape
        for z in (1, 7):
            np.testing.assert_array_equal(got[..., z], lab[..., z])
        s.propose(4)  # correct a slice: it is labelled from now on and the nearest support of its neighbours
        s.accept(lab[..., 4], 4)
        assert s.slice_support(3) == [4, 1]
        got = np.asarray(nib.load(str(s.propagate())).dataobj)
        np.testing.assert_array_equal(got[..., 4], lab[..., 4])
        np.testing.assert_array_equal(s.labels, got)


# ---------------------------------------------------------------------- the CLI
def test_cli_simulate_replays_and_resumes_in_a_fresh_process(tmp_path):
    images, masks = _dataset(tmp_path, n=5)
    folder = tmp_path / "session"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "universeg_plus", "annotate", str(images), "--session", str(folder), "--model",
           "universeg-tiny", "--random-weights", "--simulate", "--truth", str(masks)]
    first = subprocess.run([*cmd, "--items", "3"], capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "total edit cost" in first.stdout and first.stdout.count("case") == 3
    rest = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert rest.returncode == 0, rest.stderr
    assert "resumed the annotation session" in rest.stderr and "case3" in rest.stdout and "case0" not in rest.stdout
    state = json.loads((folder / "session.json").read_text())
    assert [it["step"] for it in state["items"]] == [1, 2, 3, 4, 5]
    assert len((folder / "simulation.csv").read_text().strip().splitlines()) == 1 + 5


def test_cli_simulate_needs_truth(tmp_path, capsys):
    from universeg_plus.cli import main

    images, _ = _dataset(tmp_path, n=1)
    assert main(["annotate", str(images), "--session", str(tmp_path / "s"), "--simulate"]) == 2
    assert "--simulate needs --truth MASKS" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------------- colour
def _rgb_dataset(folder: Path, n: int = 4) -> tuple[Path, list[np.ndarray], list[np.ndarray]]:
    """The synthetic hue task of benchmarks/bench_colour.py (equal luma, other hue) as RGB PNGs."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_colour import make_task

    images, masks = make_task(n, n=40, seed=11)
    folder.mkdir(parents=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"photo{i}.png")
    return folder, images, masks


def test_colour_is_refitted_on_the_accepted_items_and_kept_by_a_resumed_session(tmp_path, model):
    from universeg_plus.colour import fit_colour
    from universeg_plus.predictor import Predictor

    images_dir, images, masks = _rgb_dataset(tmp_path / "photos")
    folder = tmp_path / "session"
    with AnnotationSession(images_dir, folder, model, colour="fisher") as s:
        assert s.propose().source == "none" and s.colour_projection.name == "luma"  # nothing to fit yet
        s.accept(masks[0])
        p = s.propose()
        assert p.colour == "fisher" and s.support().colour == Predictor(model).set_support(
            images[:1], masks[:1], colour="fisher").colour
        s.accept(masks[1])
        two = Predictor(model).set_support(images[:2], masks[:2], colour="fisher")
        assert s.colour_projection == two.colour != Predictor(model).set_support(
            images[:1], masks[:1], colour="fisher").colour  # refitted on the grown set
        np.testing.assert_allclose(s.propose().probabilities, two.predict(images[2]).probabilities, atol=1e-6)
    assert json.loads((folder / "session.json").read_text())["colour"] == "fisher"

    with AnnotationSession(images_dir, folder, model) as s:  # resumed: the session's own choice
        assert s.colour == "fisher" and s.colour_projection == two.colour
    with pytest.raises(ValueError, match="was started with colour='fisher'; it stays fixed"):
        AnnotationSession(images_dir, folder, model, colour="luma")

    fixed = two.colour  # a fixed projection: applied from the first accept, even of an empty mask; saved as such
    with AnnotationSession(images_dir, tmp_path / "fixed", model, colour=fixed) as s:
        s.accept(np.zeros((40, 40), np.uint8))
        assert s.colour_projection == fixed and s.propose().colour == "fisher"
    assert json.loads((tmp_path / "fixed" / "session.json").read_text())["colour"] == fixed.as_dict()
    with AnnotationSession(images_dir, tmp_path / "fixed", model) as s:
        assert s.colour == fixed

    # auto: the choice of kind made on the first 1, 2, 4, ... accepted items; a resumed session makes the same
    with AnnotationSession(images_dir, tmp_path / "auto", model, colour="auto") as s:
        for k in range(3):
            s.accept(masks[k], k)
        running = (s.colour_projection, s.colour_scores)
    assert running[1] == pytest.approx(fit_colour("auto", model, images[:2], masks[:2])[1], abs=1e-9)
    with AnnotationSession(images_dir, tmp_path / "auto", model) as s:
        assert (s.colour_projection, s.colour_scores) == running

    grey, _ = _dataset(tmp_path / "grey", n=2)
    with pytest.raises(ValueError, match="item 'case0' is grayscale"):
        AnnotationSession(grey, tmp_path / "grey_session", model, colour="fisher")
    assert not (tmp_path / "grey_session" / "session.json").exists()


def test_cli_annotate_colour_auto_is_saved_and_a_changed_choice_refused(tmp_path):
    images_dir, _, masks = _rgb_dataset(tmp_path / "photos", n=3)
    (tmp_path / "truth").mkdir()
    for i, m in enumerate(masks):
        Image.fromarray(m * 255).save(tmp_path / "truth" / f"photo{i}.png")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "universeg_plus", "annotate", str(images_dir), "--session", str(tmp_path / "s"),
           "--model", "universeg-tiny", "--random-weights", "--simulate", "--truth", str(tmp_path / "truth")]
    first = subprocess.run([*cmd, "--colour", "auto"], capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "colour: auto, the leave-one-out choice made at 1, 2, 4, 8" in first.stderr
    assert json.loads((tmp_path / "s" / "session.json").read_text())["colour"] == "auto"
    bad = subprocess.run([*cmd, "--colour", "luma"], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "was started with --colour 'auto'" in bad.stderr, bad.stderr[-3000:]
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)  # resumed: its own choice
    assert again.returncode == 0 and "colour: auto, the leave-one-out" in again.stderr, again.stderr[-3000:]
