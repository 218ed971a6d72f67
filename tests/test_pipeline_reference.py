"""The one prediction pipeline reproduces the probabilities of the two roads it replaced (issue 22).

``tests/data/pipeline_reference.npz`` holds a tiny model's weights, fixed inputs and the probabilities
the code of commit f12f631 gave (``Predictor`` and ``TiledSegmenter``; see
``tests/data/make_pipeline_reference.py``). Every case is recomputed here through today's
``Predictor`` and its inferers and must agree within 1e-6.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from universeg_plus import create_model
from universeg_plus.inferers import Tiles
from universeg_plus.predictor import Predictor
from universeg_plus.support import SupportSet

REFERENCE = Path(__file__).parent / "data" / "pipeline_reference.npz"
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def ref():
    with np.load(REFERENCE) as data:
        arrays = {k: data[k] for k in data.files}
    model = create_model("universeg-tiny").eval()
    model.load_state_dict({k[2:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("w/")})
    inputs = {k[3:]: v for k, v in arrays.items() if k.startswith("in/")}
    expected = {k[4:]: v for k, v in arrays.items() if k.startswith("out/")}
    return model, inputs, expected


def _cases(model, inp):
    images, masks = list(inp["support_images"]), list(inp["support_masks"])
    binary = [(m == 1).astype(np.uint8) for m in masks]
    one = SupportSet.from_arrays(images, binary, size=(32, 32))
    two = SupportSet.from_arrays(images, masks, size=(32, 32))
    p = Predictor(model).set_support(one)
    tiled = Predictor(model, inferer=Tiles(windows_per_support=2)).set_support(images, binary)
    half = Predictor(model, support_chunk=5, max_pairs=7).set_support(images, binary)
    half_tiles = Tiles(scale=0.5, overlap=0.25, windows_per_support=3, normalize="image", seed=2)
    return {
        "plain": lambda: p.predict(inp["target"]),
        "batch": lambda: p.predict([inp["target"], inp["target"][::-1].copy()]),
        "ensemble": lambda: p.predict(inp["target"], ensemble=3, support_size=4, seed=5),
        "flips": lambda: p.predict(inp["target"], flips=True),
        "ensemble_flips": lambda: p.predict(inp["wide"], ensemble=2, flips=True, seed=1),
        "volume": lambda: p.predict_volume(inp["volume"], axis=2),
        "volume_axis0": lambda: p.predict_volume(inp["volume"], axis=0),
        "chunked": lambda: Predictor(model, support_chunk=4, max_pairs=5).set_support(one).predict(inp["wide"]),
        "multiclass": lambda: Predictor(model).set_support(two).predict(inp["target"]),
        "multiclass_volume": lambda: Predictor(model).set_support(two).predict_volume(inp["volume"]),
        "tiled": lambda: tiled.predict(inp["wide"]),
        "tiled_mean": lambda: tiled.predict(inp["wide"], inferer=Tiles(windows_per_support=2, fusion="mean")),
        "tiled_max": lambda: tiled.predict(inp["wide"], inferer=Tiles(windows_per_support=2, fusion="max")),
        "tiled_half_image": lambda: half.predict(inp["wide"], inferer=half_tiles),
    }


def test_every_reference_case_is_reproduced(ref):
    model, inputs, expected = ref
    cases = _cases(model, inputs)
    assert set(cases) == set(expected)
    for name, run in cases.items():
        got = run().probabilities
        assert got.shape == expected[name].shape, name
        diff = float(np.abs(got - expected[name]).max())
        assert diff <= TOLERANCE, f"{name}: max |d| = {diff:.2e} > {TOLERANCE}"
