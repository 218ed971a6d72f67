"""The few-shot demo: its logic, the served app through gradio_client, and the page in Chromium."""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from browser_helpers import chromium_or_skip

from universeg_plus import registry
from universeg_plus.demo import logic, models
from universeg_plus.demo.browser import launch_chromium
from universeg_plus.demo.logic import (
    ModelCache,
    SegmentSettings,
    load_support,
    load_target,
    perturb_inputs,
    run_segmentation,
)
from universeg_plus.demo.startup import ExampleFiles
from universeg_plus.io.images import overlay_mask, read_image
from universeg_plus.metrics import dice
from universeg_plus.predictor import Predictor
from universeg_plus.factory import create_model
from universeg_plus.registry import PretrainedEntry
from universeg_plus.support import SupportSet

# gradio's own queue code trips pandas 3 deprecation warnings; they are not the demo's
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"
TINY = "universeg-tiny"
SEGMENT_DEFAULTS = {
    "model": TINY, "backend": "eager", "support_size": 0, "ensemble": 1, "threshold": 0.5, "slice_index": -1,
    "axis": 2, "seed": 0, "perturbation": "none", "severity": 3, "where": "target", "adapt": False,
    "adapt_steps": 100, "samples": 1, "colour": "luma",
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _disc(shape: tuple[int, int], centre: tuple[int, int], radius: int) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2).astype(np.uint8)


def _pairs(folder: Path, n: int = 3, shape: tuple[int, int] = (40, 48)) -> tuple[list[Path], list[Path]]:
    """``n`` synthetic (image, mask) PNG pairs: a bright disc on noise, masks stored 0/255."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    images, masks = [], []
    for i in range(n):
        m = _disc(shape, (15 + 3 * i, 20 + 2 * i), 8 + i)
        img = (rng.random(shape) * 80 + 150 * m).astype(np.uint8)
        images.append(folder / f"case{i}.png")
        masks.append(folder / f"case{i}_mask.png")
        Image.fromarray(img).save(images[-1])
        Image.fromarray(m * 255).save(masks[-1])
    return images, masks


def _seeded_tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(TINY)


@pytest.fixture(scope="module")
def cache() -> ModelCache:
    return ModelCache([TINY])


# ---------------------------------------------------------------------- logic
def test_default_model_backends_and_pretrained_loading(monkeypatch):
    assert logic.default_model_name([TINY, "universeg-small"]) == "universeg-small"
    assert logic.default_model_name([TINY]) == TINY
    assert "randomly initialised" in logic.weights_warning(TINY)
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    assert logic.available_backends() == ["eager"]
    with pytest.raises(ValueError, match="backend 'tvm' is not available"):
        ModelCache([TINY]).get(TINY, "tvm")
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: object() if name == "tvm" else None)
    assert logic.available_backends() == ["eager", "tvm"]

    # a name in the pretrained table is the default and is loaded with pretrained=True
    monkeypatch.delitem(registry.PRETRAINED, "universeg-small", raising=False)
    monkeypatch.setitem(registry.PRETRAINED, TINY, PretrainedEntry(model=TINY, local_dir="tiny"))
    assert logic.default_model_name(["universeg-small", TINY]) == TINY
    assert logic.weights_warning(TINY) is None
    calls = []
    monkeypatch.setattr(models, "create_model", lambda name, **kw: calls.append((name, kw)) or create_model(name))
    ModelCache([TINY]).get(TINY)
    assert calls == [(TINY, {"pretrained": True})]


def test_model_cache_loads_once_seeded_and_checks_names():
    c = ModelCache([TINY], seed=0)
    net = c.get(TINY)
    assert c.get(TINY) is net and c.loads == 1
    for a, b in zip(net.state_dict().values(), _seeded_tiny().state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="unknown model 'universeg-small'; choose one of: universeg-tiny"):
        c.get("universeg-small")
    with pytest.raises(ValueError, match="unknown model"):
        ModelCache(["no-such-model"])


@pytest.mark.parametrize(
    "case, message",
    [
        ("count", r"got 3 support image\(s\) but 2 mask\(s\)"),
        ("size", r"support image case1.png is 40x48 pixels but its mask case1_mask.png is 30x30"),
        ("unreadable", r"cannot read the support mask case0_mask.png"),
        ("photo_as_mask", r"case2_mask.png has \d+ distinct values, which looks like an image, not a mask"),
        ("colour_mask", r"case0_mask.png is a colour image, not a mask"),
        ("float_mask", r"mask case0_mask.npy is neither binary nor an integer label map"),
        ("empty_masks", r"none of the support masks has any foreground"),
        ("nothing", r"no support examples"),
        ("volume_support", r"support image case0.nii.gz is a 3D volume"),
    ],
)
def test_bad_support_uploads_raise_clear_errors(tmp_path, case, message):
    images, masks = _pairs(tmp_path)
    rng = np.random.default_rng(1)
    if case == "count":
        masks = masks[:2]
    elif case == "size":
        Image.fromarray(np.zeros((30, 30), np.uint8)).save(masks[1])
    elif case == "unreadable":
        masks[0].write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    elif case == "photo_as_mask":
        shutil.copyfile(images[2], masks[2])
    elif case == "colour_mask":
        Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(masks[0])
    elif case == "float_mask":
        masks[0] = tmp_path / "case0_mask.npy"
        np.save(masks[0], _disc((40, 48), (20, 20), 9).astype(np.float32) * 0.5)  # a soft mask
    elif case == "empty_masks":
        for m in masks:
            Image.fromarray(np.zeros((40, 48), np.uint8)).save(m)
    elif case == "nothing":
        images, masks = [], None
    elif case == "volume_support":
        images[0] = tmp_path / "case0.nii.gz"
        nib.save(nib.Nifti1Image(rng.random((40, 48, 6)).astype(np.float32), np.eye(4)), images[0])
    with pytest.raises(ValueError, match=message) as info:
        load_support(images, masks, (32, 32))
    assert str(tmp_path) not in str(info.value), "messages name uploads by file name, not by temporary path"


def test_bad_target_reference_and_settings(tmp_path, cache):
    images, masks = _pairs(tmp_path)
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"garbage")

    def run(target, reference=None, **settings):
        settings = SegmentSettings(model=TINY, **settings)
        return run_segmentation(images, masks, target, reference, settings, cache, tmp_path)

    with pytest.raises(ValueError, match="no target"):
        run(None)
    with pytest.raises(ValueError, match="cannot read the target scan.png"):
        run(bad)
    with pytest.raises(ValueError, match="reference mask case0_mask.png is 40x48 pixels but the target is 30x30"):
        Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "small.png")
        run(tmp_path / "small.png", masks[0])
    with pytest.raises(ValueError, match=r"support_size must be an integer in 1..3"):
        run(images[0], support_size=5)
    with pytest.raises(ValueError, match="'label_noise' changes masks, but where='target' selects only target"):
        run(images[0], perturbation="label_noise", where="target")
    with pytest.raises(ValueError, match="severity must be an integer in 1..5"):
        run(images[0], perturbation="motion", severity=7)
    with pytest.raises(ValueError, match="threshold must be strictly between 0 and 1"):
        run(images[0], threshold=1.0)


def test_png_output_and_dice_match_the_predictor(tmp_path, cache):
    images, masks = _pairs(tmp_path, n=4)
    result = run_segmentation(
        images[:3], masks[:3], images[3], masks[3], SegmentSettings(model=TINY, ensemble=2, support_size=2, seed=3),
        cache, tmp_path / "out",
    )
    support = SupportSet.from_paths(images[:3], masks[:3], size=(32, 32))
    expected = Predictor(_seeded_tiny()).set_support(support).predict(
        read_image(images[3]), ensemble=2, support_size=2, seed=3
    )
    np.testing.assert_array_equal(result.prediction.mask, expected.mask)
    np.testing.assert_allclose(result.prediction.probabilities, expected.probabilities, atol=1e-6)
    assert [p.name for p in result.files] == ["case3_mask.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(result.files[0])), expected.mask)
    np.testing.assert_array_equal(result.overlay, overlay_mask(read_image(images[3]), expected.mask))
    np.testing.assert_array_equal(result.probability, np.round(expected.probabilities * 255).astype(np.uint8))
    ref = read_image(masks[3]) == 255
    assert result.dice == {1: pytest.approx(float(dice(expected.mask == 1, ref)))}
    assert f"**Dice** {result.dice[1]:.3f}" in result.summary and "random weights" in result.summary


def test_adapt_checkbox_is_predictor_adapt_and_the_next_click_is_not_adapted(tmp_path, cache):
    images, masks = _pairs(tmp_path, n=4)

    def click(**settings):
        return run_segmentation(images[:3], masks[:3], images[3], None, SegmentSettings(model=TINY, **settings),
                                cache, tmp_path / "out")

    adapted = click(adapt_steps=3, seed=1)
    support = SupportSet.from_paths(images[:3], masks[:3], size=(32, 32))
    expected = Predictor(_seeded_tiny()).set_support(support).adapt(steps=3, seed=1, progress=False)
    np.testing.assert_allclose(
        adapted.prediction.probabilities, expected.predict(read_image(images[3])).probabilities, atol=1e-6
    )
    assert "**Adapted** to the support set: 3 steps" in adapted.summary
    plain = click()  # the cached predictor must not keep the adapted copy
    again = Predictor(_seeded_tiny()).set_support(support).predict(read_image(images[3]))
    np.testing.assert_allclose(plain.prediction.probabilities, again.probabilities, atol=1e-6)
    assert "Adapted" not in plain.summary
    with pytest.raises(ValueError, match="eager backend"):
        click(adapt_steps=3, backend="tvm")


def test_volume_target_gives_png_and_nifti_in_the_volume_grid(tmp_path, cache):
    images, masks = _pairs(tmp_path)
    rng = np.random.default_rng(2)
    vol = (rng.random((40, 48, 7)) * 300).astype(np.int16)
    labels = np.zeros(vol.shape, np.uint8)
    for k in range(7):
        labels[..., k] = _disc((40, 48), (18, 22), 6 + k)
    vol[labels > 0] += 400
    affine = np.diag([0.8, 0.9, 2.5, 1.0])
    affine[:3, 3] = [4.0, -7.0, 12.0]
    nib.save(nib.Nifti1Image(vol, affine), tmp_path / "scan.nii.gz")
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "scan_labels.nii.gz")
    settings = SegmentSettings(model=TINY, slice_index=5, axis=2)
    result = run_segmentation(images, masks, tmp_path / "scan.nii.gz", tmp_path / "scan_labels.nii.gz",
                              settings, cache, tmp_path / "out")
    expected = Predictor(_seeded_tiny()).set_support(SupportSet.from_paths(images, masks, size=(32, 32))).predict(
        vol[..., 5]
    )
    np.testing.assert_array_equal(result.prediction.mask, expected.mask)
    png, nii = result.files
    assert (png.name, nii.name) == ("scan_mask.png", "scan_mask.nii.gz")
    np.testing.assert_array_equal(np.asarray(Image.open(png)), expected.mask)
    out = nib.load(nii)
    data = np.asarray(out.dataobj)
    assert data.shape == vol.shape and data.dtype.kind in "iu"
    np.testing.assert_allclose(out.affine, affine)
    np.testing.assert_array_equal(data[..., 5], expected.mask)
    assert not data[..., [0, 1, 2, 3, 4, 6]].any()
    assert result.dice == {1: pytest.approx(float(dice(expected.mask == 1, labels[..., 5] == 1)))}
    assert "slice 5 along axis 2 of a volume of shape (40, 48, 7)" in result.summary
    assert load_target(tmp_path / "scan.nii.gz").index == 3  # default: the middle slice
    with pytest.raises(ValueError, match=r"slice index 7 is out of range: .* has 7 slices along axis 2 \(0..6\)"):
        load_target(tmp_path / "scan.nii.gz", slice_index=7)


def test_perturbations_change_what_they_select_and_are_seeded(tmp_path):
    images, masks = _pairs(tmp_path)
    support = load_support(images, masks, (32, 32))
    image = read_image(images[0])
    noisy, same = perturb_inputs(image, support, "gaussian_noise", 4, "target", seed=1)
    again, _ = perturb_inputs(image, support, "gaussian_noise", 4, "target", seed=1)
    assert same is support and noisy.shape == image.shape and noisy.dtype == np.float32
    np.testing.assert_array_equal(noisy, again)
    assert 0.0 <= noisy.min() and noisy.max() <= 1.0 and not np.allclose(noisy, image / 255.0, atol=0.02)
    kept, changed = perturb_inputs(image, support, "label_noise", 5, "support_masks", seed=0)
    assert kept is image and changed is not support
    assert torch.equal(changed.images, support.images) and not torch.equal(changed.masks, support.masks)
    assert set(torch.unique(changed.masks).tolist()) <= {0.0, 1.0}
    assert perturb_inputs(image, support, "none", 3, "both") == (image, support)


def test_import_universeg_plus_does_not_import_gradio(monkeypatch):
    code = "import sys, universeg_plus, universeg_plus.cli, universeg_plus.demo.logic; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    monkeypatch.delitem(sys.modules, "universeg_plus.demo.ui", raising=False)
    with pytest.raises(ImportError, match=r'pip install "universeg-plus\[demo\]"'):
        import universeg_plus.demo.ui  # noqa: F401


def test_example_files_copy_once_and_start_with_the_first_task(tmp_path):
    tasks = logic.list_example_tasks(DATA)
    files = ExampleFiles(tasks, tmp_path / "copies")
    assert files.first == sorted(tasks)[0]
    images, masks, target, reference = files.initial()
    src_images, src_masks, src_target, src_reference = tasks[files.first].selection()
    assert [Path(p).name for p in images] == [p.name for p in src_images]
    assert [Path(p).name for p in masks] == [p.name for p in src_masks]
    assert (Path(target).name, Path(reference).name) == (src_target.name, src_reference.name)
    for copy, src in zip([*images, target], [*src_images, src_target]):
        assert Path(copy).is_relative_to(tmp_path / "copies") and Path(copy).read_bytes() == src.read_bytes()
    mtime = Path(target).stat().st_mtime_ns
    assert files.initial()[2] == target and Path(target).stat().st_mtime_ns == mtime, "copied once"
    assert ExampleFiles({}, tmp_path / "none").initial() == (None, None, None, None)
    with pytest.raises(ValueError, match="unknown example task 'nope'; choose one of: dsb2018_nuclei_crops"):
        files.selection("nope")


# ---------------------------------------------------------------------- the served app
_OUTBOUND: list[object] = []


def _guard_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse (and record) every connection to a non-loopback address made in this process."""
    real = socket.socket.connect

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            try:
                loopback = ipaddress.ip_address(address[0]).is_loopback
            except ValueError:  # a host name: resolved by the caller first, so treat as outbound
                loopback = address[0] == "localhost"
            if not loopback:
                _OUTBOUND.append(address)
                raise OSError(f"test: connection to {address} refused (the demo must stay offline)")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp_path_factory, examples_dir):
    """Serve the demo (universeg-tiny) on 127.0.0.1 with outbound connections refused; yields its URL."""
    mp = pytest.MonkeyPatch()
    _guard_sockets(mp)
    from universeg_plus.demo import build_demo
    from universeg_plus.demo.ui import CSS

    demo = build_demo(models=[TINY], examples_dir=examples_dir, out_dir=tmp_path_factory.mktemp("demo_out"))
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=CSS)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
        mp.undo()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The demo with the bundled example tasks (the first one loaded when the page opens)."""
    yield from _serve(tmp_path_factory, DATA)


@pytest.fixture(scope="module")
def empty_app_url(tmp_path_factory):
    """The demo without example tasks: the page starts with nothing uploaded."""
    yield from _serve(tmp_path_factory, None)


@pytest.fixture()
def client(app_url, tmp_path):
    from gradio_client import Client

    return Client(app_url, analytics_enabled=False, verbose=False, download_files=str(tmp_path / "downloads"))


def _segment(client, support_images, support_masks, target, reference=None, **settings):
    from gradio_client import handle_file

    return client.predict(
        support_images=[handle_file(str(p)) for p in support_images],
        support_masks=[handle_file(str(p)) for p in support_masks],
        target=handle_file(str(target)),
        reference=handle_file(str(reference)) if reference is not None else None,
        **{**SEGMENT_DEFAULTS, **settings},
        api_name="/segment",
    )


def _png(path: str) -> np.ndarray:
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} should be a (lossless) PNG"
    return np.asarray(Image.open(path))


def test_client_output_equals_the_predictor(client):
    task = "mni152_coronal_tissue"
    files = sorted((DATA / task / "images").glob("*.png"))
    support, target = files[:4], files[6]
    support_masks = [DATA / task / "masks" / p.name for p in support]
    reference = DATA / task / "masks" / target.name
    # masks uploaded in reverse order: the app pairs them by file name, not by upload order
    overlay, prob, summary, downloads, _ = _segment(client, support, support_masks[::-1], target, reference)

    image = read_image(target)
    sup = SupportSet.from_paths(support, support_masks, size=(32, 32))
    expected = Predictor(_seeded_tiny()).set_support(sup).predict(image)
    assert expected.classes == [1, 2]
    got_overlay = _png(overlay)
    assert got_overlay.shape == (*image.shape, 3)
    np.testing.assert_array_equal(got_overlay, overlay_mask(image, expected.mask))
    np.testing.assert_array_equal(_png(prob), np.round(expected.probabilities.max(axis=0) * 255).astype(np.uint8))
    assert [Path(p).name for p in downloads] == [f"{target.stem}_mask.png"]
    np.testing.assert_array_equal(_png(downloads[0]), expected.mask)
    ref = read_image(reference)
    mean = np.mean([float(dice(expected.mask == c, ref == c)) for c in (1, 2)])
    assert f"**Dice** {mean:.3f}" in summary
    assert not _OUTBOUND


def test_client_bad_upload_is_an_error_and_the_app_keeps_serving(client):
    from gradio_client.exceptions import AppError

    task = DATA / "dsb2018_nuclei_crops"
    files = sorted((task / "images").glob("*.png"))
    masks = [task / "masks" / p.name for p in files]
    with pytest.raises(AppError, match=r"got 3 support image\(s\) but 2 mask\(s\)"):
        _segment(client, files[:3], masks[:2], files[5])
    with pytest.raises(AppError, match=r"support_masks.*selects only"):
        _segment(client, files[:3], masks[:3], files[5], perturbation="gaussian_noise", where="support_masks")
    overlay, prob, summary, downloads, _ = _segment(client, files[:3], masks[:3], files[5])
    assert _png(overlay).shape == (96, 112, 3) and _png(prob).shape == (96, 112)
    loaded = client.predict("dsb2018_nuclei_crops", api_name="/load_example")
    assert [len(loaded[0]), len(loaded[1])] == [5, 5] and Path(loaded[2]).name == Path(loaded[3]).name
    assert not _OUTBOUND


def test_served_page_starts_with_the_first_example_loaded(app_url, empty_app_url):
    """Without a browser: the page's initial component values are the first example task's files."""
    import json
    import urllib.request

    first = next(iter(logic.list_example_tasks(DATA).values()))
    images, masks, target, reference = first.selection()

    def values(url: str) -> dict[str, object]:
        with urllib.request.urlopen(url + "config") as resp:
            config = json.load(resp)
        return {c["props"]["elem_id"]: c["props"].get("value") for c in config["components"]
                if c.get("props", {}).get("elem_id")}

    start = values(app_url)
    assert [v["orig_name"] for v in start["support-images"]] == [p.name for p in images]
    assert [v["orig_name"] for v in start["support-masks"]] == [p.name for p in masks]
    assert (start["target"]["orig_name"], start["reference"]["orig_name"]) == (target.name, reference.name)
    assert start["example-task"] == first.name
    empty = values(empty_app_url)
    assert not empty["support-images"] and not empty["target"]
    assert not _OUTBOUND


# ---------------------------------------------------------------------- the page in a browser
@contextlib.contextmanager
def _browser_page(url: str, width: int, height: int = 1000):
    """A headless Chromium page opened on ``url``; yields ``(page, outside)``, ``outside`` collecting
    every request the page makes to an address other than 127.0.0.1."""
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p, chromium)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                    else outside.append(r.url))
            page.goto(url, wait_until="networkidle")
            yield page, outside
        finally:
            browser.close()


def test_browser_upload_segment_and_screenshot(empty_app_url, tmp_path):
    task = DATA / "dsb2018_nuclei_crops"
    files = sorted((task / "images").glob("*.png"))
    masks = [task / "masks" / p.name for p in files]
    with _browser_page(empty_app_url, 1280) as (page, outside):
        from playwright.sync_api import expect

        expect(page.locator("#weights-warning-box")).to_contain_text("Random weights")

        # a bad upload: a message in the page, and the page keeps working
        page.locator("#support-images input[type=file]").set_input_files([str(f) for f in files[:3]])
        page.locator("#support-masks input[type=file]").set_input_files([str(m) for m in masks[:2]])
        page.locator("#target input[type=file]").set_input_files(str(files[5]))
        expect(page.locator("#target")).to_contain_text(files[5].stem)
        expect(page.locator("#support-masks")).to_contain_text(masks[1].stem)
        page.locator("#segment").click()
        expect(page.get_by_text("got 3 support image(s) but 2 mask(s)")).to_be_visible(timeout=20_000)

        # a second upload adds to the files already there: add the missing mask
        page.locator("#support-masks input[type=file]").set_input_files(str(masks[2]))
        expect(page.locator("#support-masks tr")).to_have_count(3)
        page.locator("#segment").click()
        overlay = page.locator("#overlay img")
        expect(overlay).to_be_visible(timeout=30_000)
        expect(page.locator("#summary")).to_contain_text("Predicted pixels")
        expect(page.locator("#downloads")).to_contain_text(f"{files[5].stem}_mask")
        size = overlay.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert size == [112, 96], "the overlay keeps the target's size"
        shot = tmp_path / "demo.png"
        page.screenshot(path=str(shot), full_page=True)
    assert Image.open(shot).size[0] == 1280
    assert not outside, f"the page requested outside addresses: {outside[:5]}"
    assert not _OUTBOUND


def test_browser_page_opens_with_the_example_loaded_and_segment_in_view(app_url):
    """At 1400x1000 the first example task is already loaded and the Segment button is on screen."""
    first = next(iter(logic.list_example_tasks(DATA).values()))
    images, masks, target, reference = first.selection()
    with _browser_page(app_url, 1400, 1000) as (page, outside):
        from playwright.sync_api import expect

        expect(page.locator("#support-images tr")).to_have_count(len(images))
        expect(page.locator("#support-masks tr")).to_have_count(len(masks))
        for path in images:
            expect(page.locator("#support-images")).to_contain_text(path.stem)
        expect(page.locator("#target")).to_contain_text(target.stem)
        expect(page.locator("#reference")).to_contain_text(reference.stem)
        button = page.locator("#segment").bounding_box()
        assert button is not None and 0 <= button["y"] and button["y"] + button["height"] <= 1000, button
        assert page.evaluate("window.scrollY") == 0
        page.locator("#segment").click()  # no upload needed: the example is the input
        expect(page.locator("#overlay img")).to_be_visible(timeout=30_000)
        expect(page.locator("#summary")).to_contain_text("Dice")
    assert not outside, f"the page requested outside addresses: {outside[:5]}"
    assert not _OUTBOUND


def _startup_text(argv: list[str], cwd: Path, until: str) -> str:
    """What a served command prints (stdout and stderr) until a line holds ``until``; then it is stopped."""
    import os
    import queue
    import threading

    proc = subprocess.Popen([sys.executable, "-m", "universeg_plus", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    seen: list[str] = []
    try:
        while not any(until in ln for ln in seen):
            seen.append(lines.get(timeout=240))
    except queue.Empty:
        pass
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return "".join(seen)


def test_demo_command_says_where_it_listens_and_names_the_share_flag(tmp_path):
    """``universeg-plus demo`` in a fresh process: its own start-up lines, none of gradio's "share=True"."""
    port = _free_port()
    text = _startup_text(["demo", "--port", str(port), "--examples", str(DATA)], tmp_path, "pass --share")
    assert f"demo running on http://127.0.0.1:{port}/" in text, text
    assert "local only; pass --share for a public gradio.live link" in text
    assert "share=True" not in text and "httpx" not in text, text


def test_annotate_command_says_where_it_listens(tmp_path):
    """``universeg-plus annotate`` serves its page the same way: its address, no "set share=True" line."""
    port = _free_port()
    images = DATA / "dsb2018_nuclei_crops" / "images"
    text = _startup_text(["annotate", str(images), "--session", str(tmp_path / "s"), "--port", str(port)],
                         tmp_path, "annotation page on")
    assert f"annotation page on http://127.0.0.1:{port}/" in text, text
    assert "share=True" not in text and "httpx" not in text, text
