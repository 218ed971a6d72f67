"""``universeg-plus segment``: segment images or volumes from a folder of labelled examples."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ..io.inputs import MAX_LABELS
from ._types import positive_int as _positive

COMMAND = "segment"
HELP = "segment 2D images or NIfTI volumes from a few labelled examples"
DESCRIPTION = """\
Segment every target image (PNG/JPEG/TIFF/BMP/NPY) or volume (NIfTI, 3D NPY) from a support set of
labelled examples. Support images and masks are matched by file stem; masks are binary or integer
label maps (0 = background), and several labels are segmented one-vs-rest. Outputs go to --out with
the target's stem: <stem>.png for 2D images (label values as stored, e.g. 0/1), <stem>.nii.gz for
NIfTI files (affine and header of the input, integer dtype), <stem>.npy for NPY volumes.
The model defaults to the best one with trained weights; a model without weights needs
--random-weights. A target that cannot be segmented does not stop the others: failures are listed
at the end and the exit code is 1 (2 for errors that stop the whole run, such as a bad support set).
Outputs are written atomically, so --skip-existing resumes a batch that was killed half-way.
Example:
  universeg-plus segment --support-images sup/images --support-masks sup/masks \\
      --target scans/ --out predictions/ --ensemble 4 --support-size 8
"""

log = logging.getLogger(__name__)


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
        "--model", default=None, metavar="NAME",
        help="registered model name (see `universeg-plus models`), loaded with its pretrained weights "
        "(default: the best model that has weights, universeg_plus.default_model_name())",
    )
    parser.add_argument(
        "--random-weights", action="store_true",
        help="allow a --model without pretrained weights, randomly initialised (its masks are meaningless)",
    )
    parser.add_argument(
        "--skip-existing", action="store_true",
        help="skip targets whose outputs already exist (outputs are written atomically, so they are complete)",
    )
    parser.add_argument(
        "--max-labels", type=_positive, default=MAX_LABELS, metavar="N",
        help=f"most labels a support mask may hold; more looks like an image given as a mask (default: {MAX_LABELS})",
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
    more = parser.add_argument_group("adaptation and native resolution")
    more.add_argument(
        "--adapt-steps", type=_positive, default=None, metavar="N",
        help="first fine-tune a copy of the model on the support set for N steps (Predictor.adapt; "
        "300 is about the time of training a small per-task U-Net)",
    )
    more.add_argument("--adapt-lr", type=float, default=None, help="adaptation learning rate (default: 1e-3)")
    more.add_argument(
        "--tiled", action="store_true",
        help="segment at native resolution in overlapping windows (thin/small structures); support from "
        "--support-images/--support-masks (2D files), several labels one-vs-rest; combines with --adapt-steps "
        "and --flips",
    )
    more.add_argument("--tile-scale", type=float, default=1.0, help="resize factor before tiling (default: 1.0 = native)")
    more.add_argument("--tile-overlap", type=float, default=0.5, help="overlap of neighbouring windows in [0, 1)")
    more.add_argument(
        "--windows-per-support", type=_positive, default=4, metavar="N", help="support windows per example (default: 4)"
    )
    more.add_argument(
        "--tile-fusion", choices=("none", "mean", "max"), default="none",
        help="fuse the tiled view with the whole-image view (default: none, the tiled view alone)",
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


def _outputs(targets: list[Path], out_dir: Path, probabilities: bool) -> list[tuple[Path, Path | None]]:
    from ..io.images import file_stem
    from ..io.inputs import output_name

    outs = []
    for path in targets:
        prob = out_dir / f"{file_stem(path)}_prob.npy" if probabilities else None
        outs.append((out_dir / output_name(path), prob))
    seen: dict[Path, Path] = {}
    for path, (dest, _) in zip(targets, outs):
        if dest in seen:
            raise ValueError(f"targets {seen[dest].name} and {path.name} would both be written to {dest}; rename one")
        seen[dest] = path
    return outs


def run(args: argparse.Namespace) -> int:
    from ..predictor import Predictor
    from ..support import SupportSet

    if args.support_set is None and not (args.support_images and args.support_masks):
        raise ValueError("give --support-images DIR and --support-masks DIR (or --support-set FILE)")
    if args.support_set is not None and (args.support_images or args.support_masks):
        raise ValueError("give either --support-set or the --support-images/--support-masks folders, not both")
    options = _options(args)  # every option checked once, before any model is loaded or output written
    inferer = _inferer(args)
    targets = _targets(Path(args.target))
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out must be a folder, but {out_dir} is a file")
    outputs = _outputs(targets, out_dir, args.save_probabilities)
    predictor = Predictor(
        args.model, device=args.device, pretrained=False if args.random_weights else None, inferer=inferer
    )
    if args.support_set is not None:
        predictor.set_support(SupportSet.load(args.support_set))
    elif args.tiled:  # the examples at their own sizes, for the support windows
        from ..io.images import paired_files

        pairs = paired_files(args.support_images, args.support_masks)
        predictor.set_support([p[1] for p in pairs], [p[2] for p in pairs], max_labels=args.max_labels)
    else:
        predictor.set_support(SupportSet.from_folder(
            args.support_images, args.support_masks, size=predictor.input_size, axis=args.axis,
            max_slices=args.support_slices, max_labels=args.max_labels,
        ))
    log.info("support set: %d examples, classes %s", len(predictor.support), predictor.support.classes)
    predictor.check_options(options=options)  # against the support set: a bad option stops the run first
    if args.adapt_steps:
        predictor.adapt(steps=args.adapt_steps, lr=args.adapt_lr, seed=args.seed)

    def segment_one(path: Path, dest: Path, prob: Path | None) -> Any:
        return predictor.predict_file(path, dest, axis=args.axis, probabilities_path=prob, options=options).mask

    return _batch(args, targets, outputs, segment_one)


def _options(args: argparse.Namespace) -> Any:
    """The prediction options, checked once; a bad one is named by its flag."""
    from ..options import PredictOptions

    try:
        return PredictOptions(
            threshold=args.threshold, ensemble=args.ensemble, support_size=args.support_size,
            flips=args.flips, seed=args.seed,
        )
    except (TypeError, ValueError) as exc:
        name, _, rest = str(exc).partition(" ")
        raise ValueError(f"--{name.replace('_', '-')} {rest}") from None


def _inferer(args: argparse.Namespace) -> Any:
    """``None`` (the Predictor's default, whole images) or the Tiles inferer of the --tile-* flags."""
    if not args.tiled:
        return None
    from ..inferers import Tiles

    if args.support_set is not None:
        raise ValueError("--tiled needs the native-size examples: give --support-images and --support-masks")
    if args.ensemble != 1 or args.support_size is not None:
        raise ValueError("--ensemble and --support-size apply to whole-image mode, not to --tiled")
    fusion = None if args.tile_fusion == "none" else args.tile_fusion
    try:
        return Tiles(scale=args.tile_scale, overlap=args.tile_overlap,
                     windows_per_support=args.windows_per_support, fusion=fusion, seed=args.seed)
    except ValueError as exc:
        raise ValueError(f"--tile-{exc}") from None


def _batch(args: argparse.Namespace, targets: list[Path], outputs: list, segment_one: Any) -> int:
    """Segment every target (skipping complete outputs with --skip-existing); failures listed, exit 1."""
    from tqdm import tqdm

    from ..io.atomic import clean_stale_partials

    for stale in clean_stale_partials(Path(args.out)):
        log.info("removed a stale temporary: %s", stale)
    failures: list[tuple[Path, str]] = []
    skipped = 0
    for path, (dest, prob) in tqdm(list(zip(targets, outputs)), desc="segment", unit="target",
                                   disable=len(targets) < 2):
        if args.skip_existing and dest.is_file() and (prob is None or prob.is_file()):
            skipped += 1
            log.info("%s: %s exists, skipped", path.name, dest)
            continue
        try:
            mask = segment_one(path, dest, prob)
        except (ValueError, TypeError, OSError, RuntimeError) as exc:
            failures.append((path, str(exc)))
            log.warning("%s failed: %s", path.name, exc)
            continue
        fg = float((mask != 0).mean())
        print(f"{path.name} -> {dest} (foreground {100 * fg:.1f}%)")
    if skipped:
        print(f"skipped {skipped} target(s) whose outputs exist (--skip-existing)")
    if failures:
        print(f"universeg-plus segment: {len(failures)} of {len(targets)} target(s) failed:", file=sys.stderr)
        for path, reason in failures:
            print(f"  {path.name}: {reason}", file=sys.stderr)
        return 1
    return 0
