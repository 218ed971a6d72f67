import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from universeg_plus.cli import build_parser, main


def _write_support(root, n=4, shape=(45, 61), labels=(1,)):
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        img = (rng.random((*shape, 3)) * 60).astype(np.uint8)
        m = np.zeros(shape, np.uint8)
        for j, lab in enumerate(labels):
            m[5 + 3 * i + 10 * j : 15 + 3 * i + 10 * j, 8 + 15 * j : 20 + 15 * j] = lab
        img[m > 0] += 150
        Image.fromarray(img).save(root / "images" / f"ex{i}.png")
        Image.fromarray(m).save(root / "masks" / f"ex{i}.png")


@pytest.fixture()
def support_dirs(tmp_path):
    _write_support(tmp_path / "sup", labels=(1, 2))
    return tmp_path / "sup" / "images", tmp_path / "sup" / "masks"


def test_help_explains_every_option():
    sub = build_parser()._subparsers._group_actions[0].choices["segment"]
    text = sub.format_help()
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and len(action.help) > 10, action.option_strings
    for opt in ["--support-images", "--support-masks", "--target", "--out", "--model", "--ensemble",
                "--support-size", "--axis"]:
        assert opt in text


def test_segment_images_and_volume_end_to_end(tmp_path, support_dirs, capsys):
    images, masks = support_dirs
    targets = tmp_path / "targets"
    targets.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray((rng.random((173, 211, 3)) * 255).astype(np.uint8)).save(targets / "odd.png")
    np.save(targets / "gray.npy", rng.random((50, 40)))
    affine = np.diag([0.7, 0.8, 3.0, 1.0])
    affine[:3, 3] = [10, -20, 5]
    vol = nib.Nifti1Image((rng.random((30, 26, 5)) * 400).astype(np.int16), affine)
    vol.header["descrip"] = b"cli test"
    nib.save(vol, targets / "scan.nii.gz")
    out = tmp_path / "out"
    code = main([
        "segment", "--support-images", str(images), "--support-masks", str(masks), "--target", str(targets),
        "--out", str(out), "--model", "universeg-tiny", "--random-weights", "--ensemble", "2", "--support-size", "2", "--axis", "2",
        "--save-probabilities",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "odd.png ->" in printed and "scan.nii.gz ->" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "gray.png", "gray_prob.npy", "odd.png", "odd_prob.npy", "scan.nii.gz", "scan_prob.npy",
    ]
    odd = np.asarray(Image.open(out / "odd.png"))
    assert odd.shape == (173, 211) and set(np.unique(odd)) <= {0, 1, 2}
    assert np.load(out / "odd_prob.npy").shape == (2, 173, 211)
    seg = nib.load(out / "scan.nii.gz")
    assert seg.shape == (30, 26, 5) and np.dtype(seg.get_data_dtype()).kind == "u"
    np.testing.assert_allclose(seg.affine, affine)
    assert seg.header["descrip"] == vol.header["descrip"]


def test_support_set_file_and_single_target(tmp_path, support_dirs):
    import torch

    from universeg_plus import create_model
    from universeg_plus.predictor import Predictor
    from universeg_plus.support import SupportSet

    images, masks = support_dirs
    SupportSet.from_folder(images, masks, size=(32, 32)).save(tmp_path / "site.safetensors")
    target = tmp_path / "t.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (40, 30), dtype=np.uint8)).save(target)
    common = ["segment", "--support-set", str(tmp_path / "site.safetensors"), "--target", str(target),
              "--model", "universeg-tiny", "--random-weights", "--save-probabilities"]
    for out, extra in (("o", ["--flips"]), ("plain", [])):
        torch.manual_seed(0)  # the same random weights each time: only --flips differs
        assert main([*common, "--out", str(tmp_path / out), *extra]) == 0
    assert np.asarray(Image.open(tmp_path / "o" / "t.png")).shape == (40, 30)
    flipped, plain = np.load(tmp_path / "o" / "t_prob.npy"), np.load(tmp_path / "plain" / "t_prob.npy")
    assert np.abs(flipped - plain).max() > 1e-4  # --flips reached the prediction
    # ... as the mean over the four flips of the same model and support set, in this process
    torch.manual_seed(0)
    model = create_model("universeg-tiny").eval()
    support = SupportSet.load(tmp_path / "site.safetensors")
    want = Predictor(model).set_support(support).predict(target, flips=True).probabilities
    np.testing.assert_allclose(flipped, want, atol=1e-6)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--target", "MISSING"], "target not found"),
        (["--ensemble", "99", "--support-size", "3"], "different subsets"),
        (["--threshold", "2"], "--threshold"),
        (["--model", "no-such-model"], "unknown model"),
        (["--tiled", "--tile-scale", "9"], "--tile-scale must be in"),
        (["--tiled", "--ensemble", "2"], "not to --tiled"),
        (["--tiled", "--tile-overlap", "1.5"], "overlap"),
        (["--adapt-steps", "2", "--adapt-lr", "-1"], "lr"),
        (["--time-budget", "5"], "--time-budget applies to --method auto"),
        (["--method", "unet", "--adapt-steps", "2"], "choose one"),
        (["--method", "unet", "--ensemble", "2"], "apply to --method 'incontext'"),
        (["--tiled", "--method", "auto"], "whole-image mode"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, support_dirs, capsys, extra, message):
    images, masks = support_dirs
    target = tmp_path / "t.png"
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(target)
    args = ["segment", "--support-images", str(images), "--support-masks", str(masks), "--target", str(target),
            "--out", str(tmp_path / "o"), "--model", "universeg-tiny", "--random-weights"]
    args = args + extra
    if "MISSING" in extra:
        args[args.index("--target") + 1] = str(tmp_path / "missing.png")
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err.split("error: ", 1)[1]
    assert not (tmp_path / "o").exists()


def test_bad_support_folder_via_real_process(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "masks" / "a.png").write_bytes(b"corrupt")
    proc = subprocess.run(
        [sys.executable, "-m", "universeg_plus", "segment", "--support-images", str(tmp_path / "images"),
         "--support-masks", str(tmp_path / "masks"), "--target", str(tmp_path / "images" / "a.png"),
         "--out", str(tmp_path / "o"), "--model", "universeg-tiny", "--random-weights"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("universeg-plus segment: error:") and "a.png" in last
    assert "Traceback" not in proc.stderr


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "universeg_plus", "segment", *args],
                          capture_output=True, text=True, timeout=300)


def test_batch_segments_the_rest_lists_failures_and_resumes(tmp_path, support_dirs):
    images, masks = support_dirs
    targets = tmp_path / "targets"
    targets.mkdir()
    rng = np.random.default_rng(3)
    for name in ("a", "c", "d"):
        Image.fromarray(rng.integers(0, 255, (40, 30), dtype=np.uint8)).save(targets / f"{name}.png")
    (targets / "b.png").write_bytes(b"\x89PNG not really")  # unreadable
    np.save(targets / "e.npy", np.zeros((40, 30, 4)))  # 4 channels: ambiguous, refused
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".a.png.partial-999999999-0123abcd"  # left by a writer that was killed
    stale.mkdir()
    (stale / "a.png").write_bytes(b"half")
    base = ["--support-images", str(images), "--support-masks", str(masks), "--target", str(targets),
            "--out", str(out), "--model", "universeg-tiny", "--random-weights"]
    proc = _cli(*base)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png", "d.png"]  # the stale temporary is gone
    tail = proc.stderr[proc.stderr.index("2 of 5 target(s) failed:"):].splitlines()
    assert tail[1].startswith("  b.png: cannot read the target b.png")
    assert tail[2].startswith("  e.npy:") and "4 channels" in tail[2]
    for name in ("a", "c", "d"):
        assert f"{name}.png -> " in proc.stdout

    # a batch killed half-way: c.png missing; --skip-existing redoes only what is missing
    (out / "c.png").unlink()
    before = {n: (out / n).stat().st_mtime_ns for n in ("a.png", "d.png")}
    (targets / "b.png").unlink()
    (targets / "e.npy").unlink()
    proc = _cli(*base, "--skip-existing")
    assert proc.returncode == 0, proc.stderr
    assert "c.png -> " in proc.stdout and "a.png -> " not in proc.stdout and "skipped 2 target(s)" in proc.stdout
    assert {n: (out / n).stat().st_mtime_ns for n in ("a.png", "d.png")} == before
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png", "d.png"]
    # with --save-probabilities an output counts as complete only with its probabilities
    proc = _cli(*base, "--skip-existing", "--save-probabilities")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "a.png", "a_prob.npy", "c.png", "c_prob.npy", "d.png", "d_prob.npy",
    ]


def test_default_model_has_weights_and_clashing_outputs_are_refused(tmp_path, support_dirs):
    from universeg_plus.registry import default_model_name

    images, masks = support_dirs
    targets = tmp_path / "t"
    targets.mkdir()
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(targets / "x.png")
    np.save(targets / "x.npy", np.zeros((20, 20)))
    proc = _cli("--support-images", str(images), "--support-masks", str(masks), "--target", str(targets),
                "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "x.npy and x.png would both be written to" in proc.stderr
    (targets / "x.npy").unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "universeg_plus", "-v", "segment", "--support-images", str(images), "--support-masks",
         str(masks), "--target", str(targets), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "randomly initialised" not in proc.stderr
    assert np.asarray(Image.open(tmp_path / "o" / "x.png")).shape == (20, 20)
    assert f"model {default_model_name()!r} with its pretrained weights" in proc.stderr


def test_adapt_steps_changes_the_masks_and_writes_them(tmp_path, support_dirs):
    """``--adapt-steps`` fine-tunes a copy on the support set before segmenting (seeded: reproducible)."""
    images, masks = support_dirs
    target = tmp_path / "t.png"
    Image.open(images / "ex1.png").save(target)
    common = ["segment", "--support-images", str(images), "--support-masks", str(masks), "--target", str(target),
              "--model", "universeg-tiny", "--random-weights", "--save-probabilities"]
    import torch

    for out, extra in (("plain", []), ("a1", ["--adapt-steps", "3", "--adapt-lr", "0.01"]),
                       ("a2", ["--adapt-steps", "3", "--adapt-lr", "0.01"])):
        torch.manual_seed(0)  # the same random weights each time: only adaptation differs
        assert main([*common, "--out", str(tmp_path / out), *extra]) == 0
    plain, a1, a2 = (np.load(tmp_path / d / "t_prob.npy") for d in ("plain", "a1", "a2"))
    assert a1.shape == plain.shape == (2, 45, 61)
    assert np.abs(a1 - plain).max() > 1e-4
    np.testing.assert_allclose(a1, a2, atol=1e-6)


def test_tiled_mode_via_real_process(tmp_path):
    """``--tiled`` in a fresh process: native-size output, binary mask, fused with the global view on request."""
    _write_support(tmp_path / "sup", n=3, shape=(150, 170))
    target = tmp_path / "t.png"
    Image.open(tmp_path / "sup" / "images" / "ex0.png").save(target)
    common = ["--support-images", str(tmp_path / "sup" / "images"), "--support-masks", str(tmp_path / "sup" / "masks"),
              "--target", str(target), "--model", "universeg-tiny", "--random-weights", "--save-probabilities"]
    for fusion in ("none", "mean"):
        proc = _cli(*common, "--out", str(tmp_path / fusion), "--tiled", "--tile-fusion", fusion,
                    "--windows-per-support", "2")
        assert proc.returncode == 0, proc.stderr[-2000:]
        mask = np.asarray(Image.open(tmp_path / fusion / "t.png"))
        assert mask.shape == (150, 170) and set(np.unique(mask)) <= {0, 1}
        prob = np.load(tmp_path / fusion / "t_prob.npy")
        assert prob.shape == (150, 170) and 0 <= prob.min() and prob.max() <= 1
        np.testing.assert_array_equal(mask, (prob > 0.5).astype(np.uint8))
    assert not np.array_equal(np.load(tmp_path / "none" / "t_prob.npy"), np.load(tmp_path / "mean" / "t_prob.npy"))
