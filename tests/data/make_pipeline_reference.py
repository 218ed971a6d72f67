"""Save the probabilities of the prediction pipeline as it was at commit f12f631 (before issue 22).

    python tests/data/make_pipeline_reference.py      # writes tests/data/pipeline_reference.npz

The file holds everything a later pipeline needs to recompute the same cases: the tiny model's weights
(``w/<name>``), the inputs (``in/<name>``) and the probabilities (``out/<case>``). The cases call the API
of f12f631 (``Predictor``, ``TiledSegmenter``); ``tests/test_pipeline_reference.py`` recomputes them with
today's API and compares (max |d| <= 1e-6). This script is the record of how the reference was made: it
runs against the old API only, so do not rerun it to "refresh" the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).with_name("pipeline_reference.npz")


def make_inputs() -> dict[str, np.ndarray]:
    """Fixed inputs: 6 support pairs (labels 1 and 2) of 40x48, targets of 40x48 and 50x70, a volume."""
    rng = np.random.default_rng(22)
    images, masks = [], []
    for i in range(6):
        img = rng.random((40, 48)) * 60
        m = np.zeros((40, 48), np.uint8)
        m[6 + i : 18 + i, 5:17] = 1
        m[20:30, 24 + i : 36 + i] = 2
        img[m == 1] += 150
        img[m == 2] += 90
        images.append(img.astype(np.uint8))
        masks.append(m)
    target = (rng.random((40, 48)) * 60).astype(np.uint8)
    target[8:20, 6:18] += 150
    wide = (rng.random((50, 70)) * 60).astype(np.uint8)
    wide[10:22, 30:44] += 150
    volume = (rng.random((24, 28, 5)) * 60).astype(np.float32)
    volume[6:14, 8:16, :] += 150
    return {
        "support_images": np.stack(images),
        "support_masks": np.stack(masks),
        "target": target,
        "wide": wide,
        "volume": volume,
    }


def main() -> None:
    from universeg_plus import create_model
    from universeg_plus.predictor import Predictor
    from universeg_plus.support import SupportSet
    from universeg_plus.tiling import TiledSegmenter

    torch.manual_seed(0)
    model = create_model("universeg-tiny").eval()
    inp = make_inputs()
    images, masks = list(inp["support_images"]), list(inp["support_masks"])
    binary = [(m == 1).astype(np.uint8) for m in masks]
    one = SupportSet.from_arrays(images, binary, size=(32, 32))
    two = SupportSet.from_arrays(images, masks, size=(32, 32))
    p = Predictor(model).set_support(one)
    out = {
        "plain": p.predict(inp["target"]).probabilities,
        "batch": p.predict([inp["target"], inp["target"][::-1].copy()]).probabilities,
        "ensemble": p.predict(inp["target"], ensemble=3, support_size=4, seed=5).probabilities,
        "flips": p.predict(inp["target"], flips=True).probabilities,
        "ensemble_flips": p.predict(inp["wide"], ensemble=2, flips=True, seed=1).probabilities,
        "volume": p.predict_volume(inp["volume"], axis=2).probabilities,
        "volume_axis0": p.predict_volume(inp["volume"], axis=0).probabilities,
        "chunked": Predictor(model, support_chunk=4, max_pairs=5).set_support(one).predict(inp["wide"]).probabilities,
        "multiclass": Predictor(model).set_support(two).predict(inp["target"]).probabilities,
        "multiclass_volume": Predictor(model).set_support(two).predict_volume(inp["volume"]).probabilities,
    }
    tiler = TiledSegmenter(model, scale=1.0, overlap=0.5, windows_per_support=2).set_support(images, binary)
    out["tiled"] = tiler.predict(inp["wide"])
    out["tiled_mean"] = tiler.predict_multiscale(inp["wide"], "mean")
    out["tiled_max"] = tiler.predict_multiscale(inp["wide"], "max")
    half = TiledSegmenter(model, scale=0.5, overlap=0.25, windows_per_support=3, normalize="image", seed=2,
                          support_chunk=5, max_pairs=7)
    out["tiled_half_image"] = half.set_support(images, binary).predict(inp["wide"])
    arrays = {f"w/{k}": v.numpy() for k, v in model.state_dict().items()}
    arrays |= {f"in/{k}": v for k, v in inp.items()}
    arrays |= {f"out/{k}": np.asarray(v, np.float32) for k, v in out.items()}
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(out)} cases)")


if __name__ == "__main__":
    main()
