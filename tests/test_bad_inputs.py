"""Bad inputs at every public boundary: each raises ValueError/TypeError/FileNotFoundError/RuntimeError
naming what was expected and what was given (issue 14, item 3), and writes nothing.

The cases come from the issue's list and from a fuzz of about 180 bad inputs over ``segment()``,
``Predictor``, ``SupportSet``, the network's forward and ``universeg-plus segment``. (Weight files and
checkpoints are covered in ``test_bad_inputs_weights.py``.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import universeg_plus.model as model_module
from universeg_plus import create_model
from universeg_plus.io.inputs import MAX_LABELS, Named
from universeg_plus.predictor import Predictor, segment
from universeg_plus.registry import default_model_name, list_models
from universeg_plus.support import SupportSet

SIZE = (32, 32)
RNG = np.random.default_rng(0)
IMG = (RNG.random((40, 48)) * 200).astype(np.uint8)
MSK = np.zeros((40, 48), np.uint8)
MSK[10:25, 10:30] = 1


def _with(value: float) -> np.ndarray:
    a = IMG.astype(np.float64)
    a[3, 3] = value
    return a


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("universeg-tiny").eval()


@pytest.fixture(scope="module")
def predictor(tiny) -> Predictor:
    return Predictor(tiny).set_support(SupportSet.from_arrays([IMG] * 3, [MSK] * 3, size=SIZE))


def _check(err: pytest.ExceptionInfo, words: list[str]) -> None:
    for w in words:
        assert w in str(err.value), (w, str(err.value))


# ---------------------------------------------------------------------- targets given to the Predictor
TARGETS = [
    ("nan", lambda: _with(np.nan), ValueError, ["target", "NaN or inf", "1 of 1920"]),
    ("inf", lambda: _with(np.inf), ValueError, ["target", "NaN or inf"]),
    ("-inf", lambda: _with(-np.inf), ValueError, ["NaN or inf"]),
    ("beyond float32", lambda: _with(1e300), ValueError, ["beyond the float32 range", "1e+300"]),
    ("H=W=0", lambda: np.zeros((0, 0)), ValueError, ["target", "is empty", "(0, 0)", "1x1"]),
    ("H=0", lambda: np.zeros((0, 5)), ValueError, ["is empty", "(0, 5)"]),
    ("(40, 40, 4) array", lambda: np.zeros((40, 40, 4)), ValueError,
     ["4 channels", "ambiguous", "RGBA or 4 slices", "(H, W, 3) RGB", "image[..., :3]", "predict_volume"]),
    ("(40, 48, 2) array", lambda: np.zeros((40, 48, 2)), ValueError, ["2 channels", "grey + alpha", "image[..., 0]"]),
    ("(4, 40, 48) tensor", lambda: torch.rand(4, 40, 48), ValueError, ["4 channels", "ambiguous"]),
    ("(8, 40, 40) in a list", lambda: [np.zeros((8, 40, 40))], ValueError,
     ["target #0", "3D volume or a stack", "must be 2D", "(8, 40, 40)", "predict_volume"]),
    ("(8, 40, 40) array as one target", lambda: np.zeros((8, 40, 40)), ValueError,
     ["ambiguous", "8 images, 8 slices of a volume, or one image with 8 channels", "(8, 40, 40)", "predict_volume",
      "(N, 1, H, W)"]),
    ("(8, 40, 40) tensor as one target", lambda: torch.rand(8, 40, 40), ValueError, ["ambiguous", "8 slices"]),
    ("4D not (N, 1, H, W)", lambda: np.zeros((2, 3, 4, 5)), ValueError, ["2D image", "(N, 1, H, W)", "(2, 3, 4, 5)"]),
    ("1D", lambda: np.zeros(10), ValueError, ["must be 2D", "(10,)"]),
    ("0-d", lambda: np.array(3.0), ValueError, ["must be 2D", "()"]),
    ("complex", lambda: np.zeros((4, 4), np.complex64), TypeError, ["numeric", "complex64"]),
    ("object", lambda: np.array([[object()]]), TypeError, ["numeric", "object"]),
    ("None", lambda: None, TypeError, ["numpy array, torch tensor, PIL image or file path", "NoneType"]),
    ("bytes", lambda: b"\x89PNG", TypeError, ["numpy array, torch tensor, PIL image or file path", "bytes"]),
    ("nested list", lambda: [[0, 1], [1, 0]], TypeError, ["target #0", "got list"]),
    ("empty list", lambda: [], ValueError, ["no targets given"]),
    ("mixed sizes", lambda: [IMG, IMG[:20]], ValueError, ["differ in size", "predict_many"]),
    ("meta tensor", lambda: torch.empty(40, 48, device="meta"), TypeError, ["meta device", "no data"]),
    ("complex tensor", lambda: torch.zeros(4, 4, dtype=torch.complex64), TypeError, ["real-valued", "complex64"]),
    ("PIL float image with NaN", lambda: Image.fromarray(_with(np.nan).astype(np.float32), "F"), ValueError,
     ["NaN or inf"]),
    ("named", lambda: Named(_with(np.nan), "scan.png"), ValueError, ["target scan.png contains NaN or inf"]),
]


@pytest.mark.parametrize("make, exc, words", [c[1:] for c in TARGETS], ids=[c[0] for c in TARGETS])
def test_bad_targets(predictor, make, exc, words):
    with pytest.raises(exc) as err:
        predictor.predict(make())
    _check(err, words)


def test_bad_target_files(predictor, tmp_path):
    cases = {
        "text.png": (b"hello", ValueError, ["cannot read the target", "text.png"]),
        "empty.png": (b"", ValueError, ["cannot read the target", "empty.png"]),
        "x.gif": (b"GIF89a", ValueError, ["unsupported file type '.gif'", ".png"]),
    }
    for name, (data, exc, words) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(exc) as err:
            predictor.predict(tmp_path / name)
        _check(err, words)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "str.npy", np.array(["a", "b"]))
    np.save(tmp_path / "four.npy", np.zeros((40, 40, 4)))
    np.save(tmp_path / "nan.npy", _with(np.nan))
    for name, exc, words in [
        ("obj.npy", ValueError, ["cannot read the target", "obj.npy", "allow_pickle"]),
        ("str.npy", ValueError, ["cannot read the target", "expected a numeric array"]),
        ("four.npy", ValueError, ["four.npy has 4 channels", "ambiguous"]),
        ("nan.npy", ValueError, ["nan.npy contains NaN or inf"]),
        ("missing.png", FileNotFoundError, ["missing.png", "no such file"]),
    ]:
        with pytest.raises(exc) as err:
            predictor.predict(tmp_path / name)
        _check(err, words)
    with pytest.raises(FileNotFoundError, match="no such file"):
        predictor.predict(tmp_path)  # a folder is not an image


def test_bad_volumes(predictor):
    with pytest.raises(ValueError) as err:
        predictor.predict_volume(np.zeros((40, 48)))
    _check(err, ["3D volume (X, Y, Z)", "(40, 48)"])
    with pytest.raises(ValueError) as err:
        predictor.predict_volume(np.full((3, 40, 48), np.nan), axis=0)
    _check(err, ["slice 0 along axis 0", "NaN or inf"])
    with pytest.raises(ValueError, match=r"axis must be an integer in 0..2, got 3"):
        predictor.predict_volume(np.zeros((4, 40, 48)), axis=3)
    with pytest.raises(TypeError, match="bools are not counts"):
        predictor.predict_volume(np.zeros((4, 40, 48)), axis=True)


# ---------------------------------------------------------------------- prediction options
OPTIONS = [
    ("ensemble=True", {"ensemble": True}, TypeError, ["ensemble", "positive integer", "True", "bools are not counts"]),
    ("ensemble=0", {"ensemble": 0}, ValueError, ["ensemble must be a positive integer", "got 0"]),
    ("ensemble=2.5", {"ensemble": 2.5}, TypeError, ["ensemble", "2.5 (float)"]),
    ("ensemble='2'", {"ensemble": "2"}, TypeError, ["ensemble", "'2' (str)"]),
    ("ensemble=None", {"ensemble": None}, TypeError, ["ensemble", "None"]),
    ("ensemble too many", {"ensemble": 99}, ValueError, ["only 3 different subsets", "asked for 99"]),
    ("support_size=True", {"support_size": True}, TypeError, ["support_size", "bools are not counts"]),
    ("support_size=0", {"support_size": 0}, ValueError, ["support_size must be a positive integer", "got 0"]),
    ("support_size=100", {"support_size": 100}, ValueError, ["in 1..3 (the support set size)", "got 100"]),
    ("support_size=2.0", {"support_size": 2.0}, TypeError, ["support_size", "2.0 (float)"]),
    ("threshold=True", {"threshold": True}, TypeError, ["threshold must be a number in (0, 1)", "True"]),
    ("threshold=0", {"threshold": 0}, ValueError, ["threshold must be in (0, 1)", "got 0"]),
    ("threshold=nan", {"threshold": float("nan")}, ValueError, ["threshold must be in (0, 1)", "nan"]),
    ("threshold='0.5'", {"threshold": "0.5"}, TypeError, ["threshold", "'0.5' (str)"]),
    ("flips='no'", {"flips": "no"}, TypeError, ["flips must be True or False", "'no'"]),
    ("flips=1", {"flips": 1}, TypeError, ["flips must be True or False", "1 (int)"]),
    ("seed=1.5", {"seed": 1.5}, TypeError, ["seed must be an integer", "1.5"]),
    ("seed=None", {"seed": None}, TypeError, ["seed must be an integer", "None"]),
]


@pytest.mark.parametrize("kwargs, exc, words", [c[1:] for c in OPTIONS], ids=[c[0] for c in OPTIONS])
def test_bad_options(predictor, kwargs, exc, words):
    with pytest.raises(exc) as err:
        predictor.predict(IMG, **kwargs)
    _check(err, words)


def test_numpy_integers_are_counts(tiny):
    images = [IMG, IMG[::-1].copy(), np.roll(IMG, 9, axis=1), np.roll(IMG, 7, axis=0)]
    masks = [MSK, MSK[::-1].copy(), np.roll(MSK, 9, axis=1), np.roll(MSK, 7, axis=0)]
    predictor = Predictor(tiny).set_support(SupportSet.from_arrays(images, masks, size=SIZE))
    pred = predictor.predict(IMG, ensemble=np.int64(3), support_size=np.int32(2), seed=np.int64(1))
    same = predictor.predict(IMG, ensemble=3, support_size=2, seed=1)
    single = predictor.predict(IMG, support_size=2, seed=1)
    np.testing.assert_array_equal(pred.probabilities, same.probabilities)  # numpy counts = Python counts
    assert np.abs(pred.probabilities - single.probabilities).max() > 1e-6  # ensemble=np.int64(2) was used


# ---------------------------------------------------------------------- support sets
MASKS = [
    ("nan", lambda: np.where(MSK > 0, np.nan, 0.0), ValueError, ["support mask #0", "NaN or inf", "300 of 1920"]),
    ("inf", lambda: np.where(MSK > 0, np.inf, 0.0), ValueError, ["support mask #0", "NaN or inf"]),
    ("grey image given as a mask", lambda: IMG, ValueError,
     ["support mask #0", "distinct values", "looks like an image, not a mask", f"at most {MAX_LABELS} labels",
      "max_labels="]),
    ("40 labels", lambda: np.arange(40 * 48).reshape(40, 48) % 41, ValueError, ["41 distinct values", "max_labels="]),
    ("soft", lambda: MSK * 0.5, ValueError, ["neither binary nor an integer label map", "0.5", "threshold soft masks"]),
    ("negative", lambda: MSK.astype(np.int64) - 1, ValueError, ["negative label -1", "labels must be >= 0"]),
    ("colour", lambda: np.stack([MSK, MSK * 0, MSK], -1), ValueError,
     ["support mask #0 is a colour image, not a mask", "single-channel"]),
    ("grey saved as an RGB array", lambda: np.stack([MSK] * 3, -1), ValueError, ["colour image, not a mask"]),
    ("4 channels", lambda: np.zeros((40, 48, 4)), ValueError, ["4 channels", "ambiguous"]),
    ("3D", lambda: np.zeros((5, 40, 48)), ValueError, ["3D volume or a stack", "from_volume"]),
    ("size mismatch", lambda: MSK[:30], ValueError,
     ["support image #0 is 40x48 pixels but its mask #0 is 30x48 pixels", "(40, 48)", "(30, 48)"]),
    ("empty", lambda: np.zeros((0, 0)), ValueError, ["support mask #0 is empty"]),
    ("too large for int64", lambda: np.where(MSK > 0, 1e20, 0.0), ValueError, ["too large for int64"]),
    ("strings", lambda: np.array([["a"]]), TypeError, ["must be numeric", "<U1"]),
]


@pytest.mark.parametrize("make, exc, words", [c[1:] for c in MASKS], ids=[c[0] for c in MASKS])
def test_bad_support_masks(make, exc, words):
    with pytest.raises(exc) as err:
        SupportSet.from_arrays([IMG], [make()], size=SIZE)
    _check(err, words)


IMAGES = [
    ("nan", lambda: _with(np.nan), ValueError, ["support image #0 contains NaN or inf"]),
    ("4 channels", lambda: np.zeros((40, 48, 4)), ValueError, ["support image #0 has 4 channels", "ambiguous"]),
    ("stack", lambda: np.zeros((8, 40, 48)), ValueError, ["3D volume or a stack", "(8, 40, 48)"]),
    ("0x0", lambda: np.zeros((0, 0)), ValueError, ["is empty"]),
    ("None", lambda: None, TypeError, ["support image #0", "NoneType"]),
    ("object", lambda: np.array([[object()]]), TypeError, ["must be numeric", "object"]),
]


@pytest.mark.parametrize("make, exc, words", [c[1:] for c in IMAGES], ids=[c[0] for c in IMAGES])
def test_bad_support_images(make, exc, words):
    with pytest.raises(exc) as err:
        SupportSet.from_arrays([make()], [MSK], size=SIZE)
    _check(err, words)


def test_max_labels_can_be_raised_and_names_are_carried(tmp_path):
    labels = np.arange(40 * 48).reshape(40, 48) % 41
    s = SupportSet.from_arrays([IMG], [labels], size=SIZE, max_labels=40)
    assert len(s.classes) == 40
    assert SupportSet.from_arrays([IMG], [labels], size=SIZE, max_labels=None).classes == s.classes
    # the name of a Named input, the index and path of a file, the index of an array
    with pytest.raises(ValueError, match=r"support mask scan_7_mask\.png has 200 distinct values"):
        SupportSet.from_arrays([IMG], [Named(IMG, "scan_7_mask.png")], size=SIZE)
    Image.fromarray(IMG).save(tmp_path / "grey.png")
    with pytest.raises(ValueError) as err:
        SupportSet.from_arrays([IMG, IMG], [MSK, tmp_path / "grey.png"], size=SIZE)
    _check(err, ["support mask #1 (", "grey.png)", "looks like an image"])


def test_bad_support_sets(tmp_path):
    s = SupportSet.from_arrays([IMG] * 3, [MSK] * 3, size=SIZE)
    cases = [
        (lambda: SupportSet.from_arrays([IMG] * 3, [MSK] * 2, size=SIZE), ValueError, ["3 images but 2 masks"]),
        (lambda: SupportSet.from_arrays([], [], size=SIZE), ValueError, ["no support images given"]),
        (lambda: SupportSet.from_arrays("a.png", "b.png", size=SIZE), TypeError, ["list of images", "single path"]),
        (lambda: SupportSet.from_arrays([IMG], [MSK], size=(0, 0)), ValueError, ["two positive integers", "(0, 0)"]),
        (lambda: SupportSet.from_arrays([IMG], [MSK], size=(32.5, 32)), ValueError, ["two positive integers"]),
        (lambda: SupportSet.from_arrays([IMG], [MSK], size=32), ValueError, ["two positive integers", "32"]),
        (lambda: SupportSet.from_arrays([IMG], [MSK], size=SIZE, mask_resize="cubic"), ValueError,
         ["'area' or 'nearest'", "'cubic'"]),
        (lambda: s.sample(True), TypeError, ["k must be an integer in 1..3", "bools are not counts"]),
        (lambda: list(s.ensembles(True, 2)), TypeError, ["n must be a positive integer", "bools are not counts"]),
        (lambda: SupportSet.from_volume(IMG, MSK, size=SIZE), ValueError, ["3D volume (X, Y, Z)", "(40, 48)"]),
        (lambda: SupportSet.from_volume(np.zeros((4, 4, 4)), np.ones((4, 4, 4)), max_slices=0, size=SIZE),
         ValueError, ["max_slices must be a positive integer", "got 0"]),
        (lambda: SupportSet(torch.full((1, 1, 8, 8), 255.0), torch.zeros(1, 1, 8, 8)), ValueError,
         ["finite and in [0, 1]"]),
    ]
    for make, exc, words in cases:
        with pytest.raises(exc) as err:
            make()
        _check(err, words)


# ---------------------------------------------------------------------- the network's forward
def _inputs(s: int = 3, size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    t = torch.rand(1, 1, size, size, generator=g)
    si = torch.rand(1, s, 1, size, size, generator=g)
    return t, si, (torch.rand(1, s, 1, size, size, generator=g) > 0.5).float()


FORWARD = [
    ("nan target", lambda t, si, sl: (t.masked_fill(t > 0.9, float("nan")), si, sl), ValueError,
     ["target_image contains NaN or inf", "finite"]),
    ("inf support images", lambda t, si, sl: (t, si.masked_fill(si > 0.9, float("inf")), sl), ValueError,
     ["support_images contains NaN or inf"]),
    ("nan labels", lambda t, si, sl: (t, si, sl.masked_fill(sl > 0.5, float("nan"))), ValueError,
     ["support_labels contains NaN or inf"]),
    ("labels 0..255", lambda t, si, sl: (t, si, sl * 255), ValueError,
     ["support_labels has values in [0, 255]", "labels must be in [0, 1]", "divide 0/255 masks by 255"]),
    ("images 0..255", lambda t, si, sl: (t, si * 255, sl), ValueError,
     ["support_images has values in", "images must be in [0, 1]", "min-max scale", "Predictor"]),
    ("target 0..255", lambda t, si, sl: (t * 255, si, sl), ValueError, ["target_image has values in"]),
    ("negative labels", lambda t, si, sl: (t, si, sl - 1), ValueError, ["support_labels has values in [-1, 0]"]),
    ("H=W=0", lambda t, si, sl: (t[..., :0, :0], si[..., :0, :0], sl[..., :0, :0]), ValueError,
     ["H and W must be at least 4", "H=0, W=0"]),
    ("other device", lambda t, si, sl: (t.to("meta"), si.to("meta"), sl.to("meta")), ValueError,
     ["target_image is on device meta", "the model is on cpu", ".to('cpu')"]),
    ("mixed dtypes", lambda t, si, sl: (t, si.double(), sl), TypeError, ["share one dtype", "torch.float64"]),
    ("bool labels", lambda t, si, sl: (t, si, sl.bool()), TypeError, ["support_labels", "floating-point", "bool"]),
    ("complex", lambda t, si, sl: (t.cfloat(), si.cfloat(), sl.cfloat()), TypeError, ["floating-point", "complex64"]),
]


@pytest.mark.parametrize("make, exc, words", [c[1:] for c in FORWARD], ids=[c[0] for c in FORWARD])
def test_bad_forward_inputs(tiny, make, exc, words):
    with pytest.raises(exc) as err:
        tiny(*make(*_inputs()))
    _check(err, words)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_dtypes_are_cast_to_the_weights_dtype(tiny, dtype):
    t, si, sl = _inputs()
    with torch.no_grad():
        ref = tiny(t, si, sl)
        out = tiny(t.to(dtype), si.to(dtype), sl.to(dtype))
    assert out.dtype == torch.float32
    # float64 rounds to the same float32 inputs; half/bfloat16 quantise the images (2**-11 / 2**-8)
    tol = {torch.float64: 1e-6, torch.float16: 1e-2, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(out, ref, atol=tol, rtol=0)


def test_soft_labels_and_round_off_are_accepted(tiny):
    t, si, sl = _inputs()
    with torch.no_grad():
        tiny(t, si, sl * 0.5)
        tiny(t * (1 + 1e-4), si, sl)  # within RANGE_TOLERANCE
    with pytest.raises(ValueError, match="target_image has values in"):
        tiny(t * (1 + 2 * model_module.RANGE_TOLERANCE) + 2 * model_module.RANGE_TOLERANCE, si, sl)


def _huge(s: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # 4096 x 4096 without the memory: stride-0 views (the check runs before anything is computed)
    plane = torch.zeros(1, 1, 1, 4096, 4096)
    return plane[:, 0], plane.expand(1, s, 1, 4096, 4096), plane.expand(1, s, 1, 4096, 4096)


def test_4096_image_given_to_the_network_is_refused_with_the_figure(monkeypatch):
    small = create_model("universeg-small").eval()
    monkeypatch.setattr(model_module, "_free_memory", lambda device: 8 * 2**30)
    need = model_module.estimate_activation_bytes(small.config, 1, 1, 4096, 4096, "split", False)
    assert need > 8 * 2**30
    with torch.no_grad(), pytest.raises(ValueError) as err:
        small(*_huge(1))
    _check(err, [f"about {need / 2**30:.1f} GiB", "only 8.0 GiB is free on cpu", "4096x4096", "resize the images",
                 "128x128", "Predictor"])
    monkeypatch.undo()
    # v1 at S=8 needs hundreds of GiB: refused on any machine, with the real free memory
    with pytest.raises(ValueError, match=r"needs about \d+\.\d GiB .* gradients kept"):
        create_model("universeg-v1")(*_huge(8))


def test_activation_estimate_scales_and_stays_quiet_for_normal_inputs():
    cfg = create_model("universeg-small").config
    base = model_module.estimate_activation_bytes(cfg, 1, 8, 128, 128)
    assert model_module.estimate_activation_bytes(cfg, 1, 8, 256, 256) == 4 * base
    assert model_module.estimate_activation_bytes(cfg, 2, 8, 128, 128) == 2 * base
    assert model_module.estimate_activation_bytes(cfg, 1, 8, 128, 128, "pairwise") > 3 * base
    assert base < model_module._CHECK_MEMORY_ABOVE  # the usual case reads no free-memory figure


# ---------------------------------------------------------------------- models, devices, defaults
def test_bad_predictor_arguments(tiny):
    with_weights = ", ".join(list_models(pretrained=True))
    cases = [
        (lambda: Predictor("universeg-v1-gelu"), ValueError,
         ["'universeg-v1-gelu' has no pretrained weights", f"models with weights: {with_weights}", "pretrained=False",
          "--random-weights"]),
        (lambda: Predictor("no-such-model"), ValueError, ["unknown model 'no-such-model'", "valid names"]),
        (lambda: Predictor("universeg-tiny", pretrained="yes"), TypeError, ["pretrained must be True, False or None"]),
        (lambda: Predictor(tiny, pretrained=True), TypeError, ["pretrained= applies to a model name"]),
        (lambda: Predictor(123), TypeError, ["UniverSegPlus-like module", "int"]),
        (lambda: Predictor(tiny, device="xyz"), ValueError, ["torch device such as 'cpu'", "'xyz'"]),
        (lambda: Predictor(tiny, device=""), ValueError, ["torch device", "''"]),
        (lambda: Predictor(tiny, support_chunk=0), ValueError, ["support_chunk must be a positive integer"]),
        (lambda: Predictor(tiny, max_pairs=True), TypeError, ["max_pairs", "bools are not counts"]),
        (lambda: segment(IMG, [IMG] * 3, [MSK] * 3, model="universeg-v1-gelu"), ValueError,
         ["'universeg-v1-gelu' has no pretrained weights", "pretrained=False"]),
        (lambda: segment(IMG, [IMG] * 3, [MSK] * 3, model=tiny, ensemble=True), TypeError, ["bools are not counts"]),
        (lambda: segment(IMG, [IMG] * 3, [IMG] * 3, model=tiny), ValueError, ["looks like an image, not a mask"]),
        (lambda: segment(_with(np.nan), [IMG] * 3, [MSK] * 3, model=tiny), ValueError, ["target", "NaN or inf"]),
    ]
    for make, exc, words in cases:
        with pytest.raises(exc) as err:
            make()
        _check(err, words)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing; this machine has it")
def test_cuda_without_cuda_is_a_clear_runtime_error(tiny):
    for device in ("cuda", "cuda:3"):
        with pytest.raises(RuntimeError) as err:
            Predictor(tiny, device=device)
        _check(err, [f"device '{device}' was asked for", "CUDA is not available here", "use 'cpu'"])


def test_explicit_random_weights_stay_possible(tiny):
    p = Predictor("universeg-tiny", pretrained=False)
    assert p.input_size == (32, 32)
    pred = segment(IMG, [IMG] * 3, [MSK] * 3, model="universeg-tiny", pretrained=False)
    assert pred.mask.shape == IMG.shape


def test_defaults_are_the_best_model_with_weights_in_a_fresh_process():
    code = (
        "import numpy as np, universeg_plus as up\n"
        "from universeg_plus.registry import default_model_name, list_models\n"
        "p = up.Predictor()\n"
        "assert default_model_name() in list_models(pretrained=True), default_model_name()\n"
        "assert p.input_size == tuple(up.get_config(default_model_name()).input_size)\n"
        "img = np.zeros((40, 48), np.uint8); img[10:25, 10:30] = 200\n"
        "msk = (img > 0).astype(np.uint8)\n"
        "pred = up.segment(img, [img, img], [msk, msk])\n"
        "print('ok', default_model_name(), pred.mask.shape)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"ok {default_model_name()} (40, 48)" in proc.stdout
    assert "randomly initialised" not in proc.stderr


# ---------------------------------------------------------------------- files: nothing written on failure
def test_predict_file_refuses_before_writing(predictor, tmp_path):
    Image.fromarray(IMG).save(tmp_path / "scan.png")
    cases = [
        (lambda: predictor.predict_file(tmp_path / "scan.png", tmp_path / "o" / "scan.nii.gz"), ValueError,
         ["cannot write the mask of the 2D image scan.png to scan.nii.gz", ".png, .npy"]),
        (lambda: predictor.predict_file(tmp_path / "scan.png", tmp_path / "scan.png"), ValueError,
         ["refusing to overwrite", "scan.png"]),
        (lambda: predictor.predict_file(tmp_path / "scan.png", tmp_path / "o" / "m.png", ensemble=True), TypeError,
         ["bools are not counts"]),
        (lambda: predictor.predict_file(tmp_path / "scan.png", tmp_path / "o" / "m.png",
                                        probabilities_path=tmp_path / "o" / "p.png"), ValueError,
         ["probabilities_path must end in .npy"]),
        (lambda: predictor.predict_file(tmp_path / "nope.png", tmp_path / "o" / "m.png"), FileNotFoundError,
         ["nope.png", "no such file"]),
    ]
    (tmp_path / "bad.png").write_bytes(b"junk")
    cases.append((lambda: predictor.predict_file(tmp_path / "bad.png", tmp_path / "o" / "m.png"), ValueError,
                  ["cannot read the target bad.png"]))
    for make, exc, words in cases:
        with pytest.raises(exc) as err:
            make()
        _check(err, words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "scan.png"]


def _support_folder(root: Path) -> tuple[Path, Path]:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(3):
        Image.fromarray(np.roll(IMG, i, axis=0)).save(root / "images" / f"e{i}.png")
        Image.fromarray(np.roll(MSK, i, axis=0) * 255).save(root / "masks" / f"e{i}.png")
    return root / "images", root / "masks"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "universeg_plus", "segment", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path):
    images, masks = _support_folder(tmp_path / "sup")
    Image.fromarray(IMG).save(tmp_path / "t.png")
    (tmp_path / "file.txt").write_text("not a folder")
    base = ["--support-images", str(images), "--support-masks", str(masks), "--target", str(tmp_path / "t.png")]
    cases = [
        (["--out", str(tmp_path / "o1"), "--model", "universeg-v1-gelu"],
         ["'universeg-v1-gelu' has no pretrained weights", "--random-weights"]),
        (["--out", str(tmp_path / "o2"), "--device", "xyz"], ["torch device such as 'cpu'"]),
        (["--out", str(tmp_path / "file.txt")], ["--out must be a folder", "file.txt is a file"]),
        (["--out", str(tmp_path / "o3"), "--model", "universeg-tiny", "--random-weights", "--support-size", "9"],
         ["--support-size must be an integer in 1..3"]),  # the flag, not the API argument
    ]
    if not torch.cuda.is_available():
        cases.append((["--out", str(tmp_path / "o4"), "--device", "cuda"], ["CUDA is not available here"]))
    for extra, words in cases:
        proc = _cli(*base, *extra)
        assert proc.returncode == 2, (extra, proc.stderr)
        assert "Traceback" not in proc.stderr and "AssertionError" not in proc.stderr, proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("universeg-plus segment: error:"), last
        for w in words:
            assert w in last, (w, last)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "sup", "t.png"]
