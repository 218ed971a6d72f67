import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from universeg_plus.io import (
    file_stem,
    list_image_files,
    overlay_mask,
    read_image,
    read_nifti,
    volume_slices,
    write_image,
    write_label_nifti,
    write_npy,
    write_png,
)


def test_png_and_npy_round_trip(tmp_path):
    labels = np.arange(30, dtype=np.uint8).reshape(5, 6) % 4
    write_png(tmp_path / "a.png", labels)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), labels)
    wide = (np.arange(20).reshape(4, 5) * 1000).astype(np.int64)
    write_png(tmp_path / "b.png", wide)
    np.testing.assert_array_equal(read_image(tmp_path / "b.png"), wide)
    rgb = np.random.default_rng(0).integers(0, 255, (7, 9, 3), dtype=np.uint8)
    write_image(tmp_path / "c.png", rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "c.png"), rgb)
    f = np.random.default_rng(0).random((3, 4, 5))
    write_npy(tmp_path / "d.npy", f)
    np.testing.assert_array_equal(read_image(tmp_path / "d.npy"), f)
    write_png(tmp_path / "e.png", np.array([[0.0, 1.0]]))
    np.testing.assert_array_equal(read_image(tmp_path / "e.png"), [[0, 255]])
    assert [file_stem(p) for p in list_image_files(tmp_path)] == ["a", "b", "c", "d", "e"]
    assert file_stem("x/case.nii.gz") == "case"


def test_write_errors(tmp_path):
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        write_png(tmp_path / "x.png", np.array([[0.0, 2.0]]))
    with pytest.raises(ValueError, match="shape"):
        write_png(tmp_path / "x.png", np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="65535"):
        write_png(tmp_path / "x.png", np.array([[-1, 3]]))
    with pytest.raises(ValueError, match="suffix"):
        write_image(tmp_path / "x.gif", np.zeros((2, 2), np.uint8))
    assert not list(tmp_path.iterdir())


def test_unreadable_files_are_named(tmp_path):
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="scan.png"):
        read_image(bad)
    badnii = tmp_path / "vol.nii.gz"
    badnii.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="vol.nii.gz"):
        read_image(badnii)
    with pytest.raises(ValueError, match="unsupported file type"):
        (tmp_path / "a.gif").write_bytes(b"GIF89a")
        read_image(tmp_path / "a.gif")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")


def test_atomic_png_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    dest = tmp_path / "mask.png"
    write_png(dest, np.ones((4, 4), np.uint8))
    before = dest.read_bytes()

    def failing_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as fh:
            fh.write(b"\x89PNG half")
        raise OSError("disk full (injected)")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="injected"):
        write_png(dest, np.zeros((4, 4), np.uint8))
    assert dest.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["mask.png"]
    with pytest.raises(OSError, match="injected"):
        write_png(tmp_path / "new.png", np.zeros((4, 4), np.uint8))
    assert not (tmp_path / "new.png").exists()


def _reference_volume(tmp_path):
    rng = np.random.default_rng(0)
    data = (rng.random((12, 10, 6)) * 1000).astype(np.int16)
    affine = np.array([[0.8, 0, 0, -40.0], [0, 0.9, 0.1, 20.0], [0, 0, 2.5, 7.0], [0, 0, 0, 1]])
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"test scan"
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=2)
    img.header.set_slope_inter(2.0, -5.0)  # scaled CT-like data
    path = tmp_path / "scan.nii.gz"
    nib.save(img, path)
    return path


def test_nifti_label_volume_keeps_affine_and_header(tmp_path):
    data, ref = read_nifti(_reference_volume(tmp_path))
    assert data.shape == (12, 10, 6) and data.dtype == np.float64  # scaled: get_fdata
    labels = (data > np.median(data)).astype(np.int64) + (data > np.quantile(data, 0.9))
    out = write_label_nifti(tmp_path / "out" / "scan_seg.nii.gz", labels, ref)
    back = nib.load(out)
    np.testing.assert_array_equal(np.asarray(back.dataobj), labels)
    assert np.dtype(back.get_data_dtype()) == np.uint8
    np.testing.assert_allclose(back.affine, ref.affine)
    np.testing.assert_allclose(back.header.get_sform(), ref.header.get_sform())
    np.testing.assert_allclose(back.header.get_qform(), ref.header.get_qform())
    assert int(back.header["sform_code"]) == 2 and int(back.header["qform_code"]) == 1
    assert back.header["descrip"] == ref.header["descrip"]
    assert back.header.get_xyzt_units() == ref.header.get_xyzt_units()
    np.testing.assert_allclose(back.header.get_zooms(), ref.header.get_zooms())
    assert back.dataobj.slope == 1 and back.dataobj.inter == 0
    raw, _ = read_nifti(out)
    assert raw.dtype == np.uint8
    big = write_label_nifti(tmp_path / "big.nii", labels * 300, ref)
    assert np.dtype(nib.load(big).get_data_dtype()) == np.uint16
    with pytest.raises(ValueError, match="shape"):
        write_label_nifti(tmp_path / "bad.nii.gz", labels[:-1], ref)
    with pytest.raises(ValueError, match="integers"):
        write_label_nifti(tmp_path / "bad.nii.gz", labels + 0.5, ref)


def test_atomic_nifti_write_under_failure(tmp_path, monkeypatch):
    data, ref = read_nifti(_reference_volume(tmp_path))
    labels = (data > 0).astype(np.uint8)

    def failing_save(img, filename, **kwargs):
        with open(filename, "wb") as fh:
            fh.write(b"half a volume")
        raise RuntimeError("killed mid-write (injected)")

    monkeypatch.setattr(nib, "save", failing_save)
    with pytest.raises(RuntimeError, match="injected"):
        write_label_nifti(tmp_path / "seg.nii.gz", labels, ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.nii.gz"]


def test_volume_slices_and_overlay():
    vol = np.arange(24).reshape(2, 3, 4)
    s = volume_slices(vol, 1)
    assert s.shape == (3, 2, 4)
    np.testing.assert_array_equal(s[1], vol[:, 1, :])
    with pytest.raises(ValueError, match="3D"):
        volume_slices(vol[0], 0)
    ov = overlay_mask(np.zeros((3, 3)), np.eye(3, dtype=np.uint8), alpha=1.0)
    assert ov.shape == (3, 3, 3) and ov.dtype == np.uint8
    assert tuple(ov[0, 0]) == (230, 25, 75) and tuple(ov[0, 1]) == (0, 0, 0)


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from universeg_plus.io import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        write_png(tmp_path / "b.png", np.zeros((4, 4), np.uint8))
    finally:
        os.umask(old)
    for name in ("a.txt", "b.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.png"]  # no temporary left


def test_temporaries_match_no_reader_and_a_killed_write_is_cleaned(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from universeg_plus.io import atomic_path, clean_stale_partials

    # during the write, the destination folder holds no *.png but a hidden folder; the writer sees the real name
    with atomic_path(tmp_path / "mask.png") as tmp:
        assert tmp.name == "mask.png" and tmp.parent.parent == tmp_path
        assert tmp.parent.name.startswith(".mask.png.partial-") and not tmp.parent.name.endswith(".png")
        assert list(tmp_path.glob("*.png")) == [] and list(tmp_path.glob("*.nii.gz")) == []
        assert clean_stale_partials(tmp_path) == []  # our own write in flight is left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png"]

    # kill -9 half-way through a write: a stale partial folder stays behind, invisible to *.png
    code = (
        "import os, signal, sys\n"
        "from universeg_plus.io import atomic_path\n"
        f"with atomic_path({str(tmp_path / 'seg.png')!r}) as tmp:\n"
        "    tmp.write_bytes(b'half a png')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    left = [p for p in tmp_path.iterdir() if p.name != "mask.png"]
    assert len(left) == 1 and left[0].name.startswith(".seg.png.partial-") and left[0].is_dir()
    assert [p.name for p in tmp_path.glob("*.png")] == ["mask.png"]
    # a temporary file of earlier versions (.<name>.<random>.tmp.png), an hour old
    old = tmp_path / ".old.png.k3j4h5g6.tmp.png"
    old.write_bytes(b"half")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    # a live writer's partial folder (this process's parent is alive) is kept
    live = tmp_path / f".live.png.partial-{os.getppid()}-0123abcd"
    live.mkdir()
    removed = clean_stale_partials(tmp_path)
    assert sorted(p.name for p in removed) == sorted([left[0].name, old.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "mask.png"])


def test_write_labels_picks_the_format_from_the_suffix(tmp_path):
    from universeg_plus.io import write_labels

    labels = (np.arange(30).reshape(5, 6) % 3).astype(np.uint8)
    np.testing.assert_array_equal(read_image(write_labels(tmp_path / "a.png", labels)), labels)
    np.testing.assert_array_equal(np.load(write_labels(tmp_path / "a.npy", labels)), labels)
    ref = nib.Nifti1Image(np.zeros((5, 6, 1), np.int16), np.diag([2.0, 3.0, 4.0, 1.0]))
    out = nib.load(write_labels(tmp_path / "a.nii.gz", labels, ref))
    assert out.shape == (5, 6, 1)
    np.testing.assert_allclose(out.affine, ref.affine)
    np.testing.assert_array_equal(np.asarray(out.dataobj)[..., 0], labels)
    with pytest.raises(ValueError, match="unsupported suffix"):
        write_labels(tmp_path / "a.jpg", labels)


def test_paired_files_recognise_common_mask_suffixes_and_say_how_to_pair(tmp_path):
    from universeg_plus.io.images import paired_files

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for stem, mask_name in (("a", "a.png"), ("b", "b_mask.png"), ("c", "c_SEG.png"), ("d", "d_label.png"),
                            ("e", "e_gt.png")):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(images / f"{stem}.png")
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(masks / mask_name)
    pairs = paired_files(images, masks)
    assert [(s, i.name, m.name) for s, i, m in pairs] == [
        ("a", "a.png", "a.png"), ("b", "b.png", "b_mask.png"), ("c", "c.png", "c_SEG.png"),
        ("d", "d.png", "d_label.png"), ("e", "e.png", "e_gt.png"),
    ]
    # two masks for one image: ambiguous, both named
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(masks / "a_mask.png")
    with pytest.raises(ValueError, match=r"a\.png .*two masks.*a(_mask)?\.png and a(_mask)?\.png"):
        paired_files(images, masks)
    (masks / "a_mask.png").unlink()
    # a mask named some other way: listed, with how to name it
    (masks / "e_gt.png").rename(masks / "e_annotation.png")
    with pytest.raises(ValueError, match=r"2 file\(s\).*no partner: e, e_annotation\. .*scan1_mask\.png"):
        paired_files(images, masks)
