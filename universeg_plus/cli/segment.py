"""``universeg-plus segment``: segment images or volumes from a folder of labelled examples."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

COMMAND = "segment"
HELP = "segment 2D images or NIfTI volumes from a few labelled examples"
DESCRIPTION = """\
Segment every target image (PNG/JPEG/TIFF/BMP/NPY) or volume (NIfTI, 3D NPY) from a support set of
labelled examples. Support images and masks are matched by file stem; masks are binary or integer
label maps (0 = background), and several labels are segmented one-vs-rest. Outputs go to --out with
the target's stem: <stem>.png for 2D images (label values as stored, e.g. 0/1), <stem>.nii.gz for
NIfTI volumes (affine and header of the input, integer dtype), <stem>.npy for NPY volumes.
Example:
  universeg-plus segment --support-images sup/images --support-masks sup/masks \\
      --target scans/ --out predictions/ --ensemble 4 --support-size 8
"""

log = logging.getLogger(__name__)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sup = parser.add_argument_group("support set (labelled examples)")
    sup.add_argument("--support-images", metavar="DIR", help="folder of example images (2D files or NIfTI volumes)")
    sup.add_argument("--support-masks", metavar="DIR", help="folder of their masks, same file stems as the images")
    sup.add_argument(
        "--support-set", metavar="FILE",
        help="a prepared support set (.safetensors from SupportSet.save) instead of the two folders",
    )
    sup.add_argument(
        "--support-slices", type=_positive, default=16, metavar="N",
        help="for support volumes: foreground slices taken per volume, evenly spaced (default: 16)",
    )
    parser.add_argument(
        "--target", required=True, metavar="PATH_OR_DIR", help="an image/volume file, or a folder of them"
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (created; files are written atomically)"
    )
    parser.add_argument(
        "--model", default="universeg-v1", metavar="NAME",
        help="registered model name (see `universeg-plus models`); pretrained weights are loaded when "
        "declared, otherwise it warns that the weights are random (default: universeg-v1)",
    )
    parser.add_argument(
        "--ensemble", type=_positive, default=1, metavar="N",
        help="average the probabilities over N different random support subsets (default: 1)",
    )
    parser.add_argument(
        "--support-size", type=_positive, default=None, metavar="K",
        help="examples per support subset (default: all; half of them when --ensemble > 1)",
    )
    parser.add_argument(
        "--axis", type=int, default=2, choices=(0, 1, 2), metavar="A",
        help="slicing axis for volumes, targets and support alike (0, 1 or 2; default: 2)",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="foreground probability cut-off in (0, 1) (default: 0.5)"
    )
    parser.add_argument(
        "--flips", action="store_true", help="test-time flips: also predict on flipped inputs and average"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the support-subset draw (default: 0)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cpu)")
    parser.add_argument(
        "--save-probabilities", action="store_true",
        help="also write the probability maps as <stem>_prob.npy (float32; a class axis first for several labels)",
    )


def _targets(path: Path) -> list[Path]:
    from ..io.images import IMAGE_SUFFIXES, list_image_files

    if path.is_dir():
        files = list_image_files(path)
        if not files:
            raise ValueError(f"no image or volume files ({', '.join(IMAGE_SUFFIXES)}) in {path}")
        return files
    if not path.exists():
        raise FileNotFoundError(f"target not found: {path}")
    return [path]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..io.images import file_stem, is_volume, read_image, write_npy, write_png
    from ..io.nifti import read_nifti, write_label_nifti
    from ..predictor import Predictor
    from ..support import SupportSet

    if args.support_set is None and not (args.support_images and args.support_masks):
        raise ValueError("give --support-images DIR and --support-masks DIR (or --support-set FILE)")
    if args.support_set is not None and (args.support_images or args.support_masks):
        raise ValueError("give either --support-set or the --support-images/--support-masks folders, not both")
    if not 0.0 < args.threshold < 1.0:
        raise ValueError(f"--threshold must be in (0, 1), got {args.threshold}")
    targets = _targets(Path(args.target))
    predictor = Predictor(args.model, device=args.device)
    if args.support_set is not None:
        support = SupportSet.load(args.support_set)
    else:
        support = SupportSet.from_folder(
            args.support_images, args.support_masks, size=predictor.input_size, axis=args.axis,
            max_slices=args.support_slices,
        )
    predictor.set_support(support)
    log.info("support set: %d examples, classes %s", len(support), support.classes)
    out_dir = Path(args.out)
    options = dict(
        threshold=args.threshold, ensemble=args.ensemble, support_size=args.support_size,
        flips=args.flips, seed=args.seed,
    )
    for path in tqdm(targets, desc="segment", unit="target", disable=len(targets) < 2):
        stem = file_stem(path)
        nifti = path.name.lower().endswith((".nii", ".nii.gz"))
        if nifti:
            data, ref = read_nifti(path)
        else:
            data, ref = read_image(path), None
        if is_volume(data, path):
            pred = predictor.predict_volume(data, axis=args.axis, **options)
        else:
            squeezed = data.reshape(data.shape[:2]) if nifti and data.ndim == 3 else data
            pred = predictor.predict(squeezed, **options)
        if nifti:
            dest = write_label_nifti(out_dir / f"{stem}.nii.gz", pred.mask.reshape(data.shape), ref)
        elif pred.mask.ndim == 3:
            dest = write_npy(out_dir / f"{stem}.npy", pred.mask)
        else:
            dest = write_png(out_dir / f"{stem}.png", pred.mask)
        if args.save_probabilities:
            write_npy(out_dir / f"{stem}_prob.npy", pred.probabilities)
        fg = float((pred.mask != 0).mean())
        print(f"{path.name} -> {dest} (foreground {100 * fg:.1f}%)")
    return 0
