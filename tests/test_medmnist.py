import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest

pytest.importorskip("medmnist.info", reason="the medmnist extra is not installed")

from universeg_plus.data.medmnist import MedMNISTSource, medmnist_flags, medmnist_path  # noqa: E402
from universeg_plus.predictor import Predictor  # noqa: E402


def _write(path, split="test", shape=(5, 28, 28), n_labels=1, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        f"{split}_images": rng.integers(0, 255, shape, dtype=np.uint8),
        f"{split}_labels": rng.integers(0, 3, (shape[0], n_labels)),
    }
    np.savez(path, **arrays)
    return arrays


def test_layout_names_and_sizes(tmp_path):
    assert "organamnist" in medmnist_flags() and "organmnist3d" in medmnist_flags()
    assert medmnist_path("organamnist", 28, tmp_path) == tmp_path / "organamnist.npz"
    assert medmnist_path("organamnist", 128, tmp_path) == tmp_path / "organamnist_128.npz"
    with pytest.raises(ValueError, match="sizes"):
        medmnist_path("organmnist3d", 128, tmp_path)
    with pytest.raises(ValueError, match="unknown MedMNIST flag"):
        medmnist_path("brainmnist", 28, tmp_path)


def test_reads_small_2d_file_without_count_checks(tmp_path):
    arrays = _write(tmp_path / "organamnist_64.npz", shape=(5, 64, 64))
    src = MedMNISTSource("organamnist", split="test", size=64, root=tmp_path)
    assert len(src) == 5
    np.testing.assert_array_equal(src[2], arrays["test_images"][2])
    assert src.label_names(0)[0] in src.info["label"].values()
    t = src.targets(3, seed=1)
    assert len(t) == 3 and t[0].shape == (64, 64)
    assert [x.tobytes() for x in t] == [x.tobytes() for x in src.targets(3, seed=1)]


def test_reads_3d_file_and_serves_target_slices(tmp_path):
    arrays = _write(tmp_path / "organmnist3d.npz", split="val", shape=(4, 28, 28, 28))
    src = MedMNISTSource("organmnist3d", split="val", root=tmp_path)
    assert src.is_3d and src[0].shape == (28, 28, 28)
    sl = src.targets(2, seed=0, axis=1)
    order = np.random.default_rng(0).permutation(4)[:2]
    np.testing.assert_array_equal(sl[0], arrays["val_images"][order[0]][:, 14, :])


def test_missing_file_never_downloads_and_bad_files_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        MedMNISTSource("breastmnist", root=tmp_path)
    _write(tmp_path / "breastmnist.npz", split="train")
    with pytest.raises(ValueError, match="missing array"):
        MedMNISTSource("breastmnist", split="test", root=tmp_path)
    (tmp_path / "pneumoniamnist.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="pneumoniamnist.npz"):
        MedMNISTSource("pneumoniamnist", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        MedMNISTSource("breastmnist", split="holdout", root=tmp_path)


def test_explicit_download_from_local_server(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    _write(served / "bloodmnist.npz", shape=(3, 28, 28, 3))
    digest = hashlib.md5((served / "bloodmnist.npz").read_bytes()).hexdigest()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        from medmnist.info import INFO

        url = f"http://127.0.0.1:{server.server_address[1]}/bloodmnist.npz"
        monkeypatch.setitem(INFO, "bloodmnist", {**INFO["bloodmnist"], "url": url, "MD5": digest})
        src = MedMNISTSource("bloodmnist", root=tmp_path / "root", download=True)
        assert src.images.shape == (3, 28, 28, 3)
        monkeypatch.setitem(INFO, "bloodmnist", {**INFO["bloodmnist"], "url": url, "MD5": "0" * 32})
        with pytest.raises(RuntimeError, match="MD5 mismatch"):
            MedMNISTSource("bloodmnist", root=tmp_path / "other", download=True)
        assert not (tmp_path / "other" / "bloodmnist.npz").exists()
    finally:
        server.shutdown()
        server.server_close()


def test_medmnist_targets_go_through_the_predictor(tmp_path):
    import torch
    import torch.nn.functional as F

    from universeg_plus import create_model
    from universeg_plus.support import SupportSet, preprocess_image

    _write(tmp_path / "organamnist.npz", shape=(3, 28, 28))
    src = MedMNISTSource("organamnist", root=tmp_path)
    imgs = src.targets()
    support = SupportSet.from_arrays(imgs, [(i > 128).astype(np.uint8) for i in imgs], size=(32, 32))
    model = create_model("universeg-tiny").eval()
    pred = Predictor(model).set_support(support).predict(np.stack(imgs)[:, None])  # (N, 1, H, W): N targets
    assert pred.mask.shape == pred.probabilities.shape == (3, 28, 28)
    # the same numbers as the image rule + the network + sigmoid + bilinear back to 28x28, done by hand
    x = torch.stack([preprocess_image(i, (32, 32)) for i in imgs])
    with torch.no_grad():
        logits = model(x, support.images[None].expand(3, -1, -1, -1, -1), support.masks[None].expand(3, -1, -1, -1, -1))
    ref = F.interpolate(torch.sigmoid(logits), size=(28, 28), mode="bilinear", align_corners=False)[:, 0].numpy()
    np.testing.assert_allclose(pred.probabilities, ref, atol=1e-5)
    np.testing.assert_array_equal(pred.mask, (ref > 0.5).astype(np.uint8))
