"""Quickstart: segment the bundled MNI152 slices from five labelled ones with the Python API.

    python examples/quickstart.py [--model NAME] [--out DIR]

Uses the pretrained weights declared for the model (random weights otherwise, with a warning).
Writes one file, the prepared support set, into --out (default: a new temporary folder).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np

import universeg_plus as up
from universeg_plus.io import list_image_files, read_image

TASK = Path(__file__).parent / "data" / "mni152_coronal_tissue"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", default=up.default_model_name(), help="registered model name (default: %(default)s)"
    )
    parser.add_argument(
        "--random-weights", action="store_true",
        help="allow a model without trained weights (its masks are noise; for smoke tests)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR",
        help="folder for the saved support set (created if needed; default: a new temporary folder)",
    )
    args = parser.parse_args()
    out = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="universeg_plus_quickstart_"))
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING)
    pretrained = False if args.random_weights else None  # None: the model's trained weights, refused if it has none

    images = list_image_files(TASK / "images")
    masks = list_image_files(TASK / "masks")
    support_idx = [0, 3, 6, 9, 11]

    # 1. one call: support images/masks as file paths, target as a path
    pred = up.segment(
        images[1],
        [images[i] for i in support_idx],
        [masks[i] for i in support_idx],
        model=args.model,
        pretrained=pretrained,
    )
    print("segment():", pred.mask.shape, "labels", sorted(np.unique(pred.mask).tolist()), "classes", pred.classes)

    # 2. the Predictor: prepare the support once, predict many targets with ensembling
    predictor = up.Predictor(args.model, pretrained=pretrained)
    support = up.SupportSet.from_paths(
        [images[i] for i in support_idx], [masks[i] for i in support_idx], size=predictor.input_size
    )
    predictor.set_support(support)
    for i in (1, 4, 7):
        target, ref = read_image(images[i]), read_image(masks[i])
        p = predictor.predict(target, ensemble=3, support_size=4, seed=0)
        scores = up.per_class_metrics(p.mask, ref, classes=support.classes)
        print(images[i].name, {c: round(m["dice"], 3) for c, m in scores.items()})

    # 3. save the prepared support set so a site can reuse it without the original files
    path = support.save(out / "mni152_support.safetensors")
    print("saved", path, "->", up.SupportSet.load(path))


if __name__ == "__main__":
    main()
