"""``universeg-plus segment``: segment images or volumes from a folder of labelled examples."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..io.images import file_stem
from ..io.inputs import MAX_LABELS
from ._device import add_device_argument
from ._flags import cli_message
from ._predict_args import add_colour_argument, add_prediction_arguments, colour_line
from ._types import positive_int as _positive

COMMAND = "segment"
HELP = "segment 2D images or NIfTI volumes from a few labelled examples"
DESCRIPTION = """\
Segment every target image (PNG/JPEG/TIFF/BMP/NPY) or volume (NIfTI, 3D NPY) from a support set of
labelled examples: --support DIR (a folder holding images/ and masks/, and optionally meta.json with
label names), or --support-images and --support-masks. A mask pairs with the image of the same file
stem, or of its stem without _mask, _seg, _label or _gt (scan1.png -> scan1_mask.png); masks are
binary or integer label maps (0 = background), and several labels are segmented one-vs-rest.
Outputs go to --out with the target's stem: <stem>.png for 2D images (label values as stored, e.g.
0/1, which look black in an image viewer), <stem>.nii.gz for NIfTI files (affine and header of the
input, integer dtype), <stem>.npy for NPY volumes; --overlay adds <stem>_overlay.png, the labels
coloured over the image with a legend. The model defaults to the best one with trained weights; a
model without weights needs --random-weights. --device auto (the default) uses CUDA when available.
A target that cannot be segmented does not stop the others: failures are listed at the end and the
exit code is 1 (2 for errors that stop the whole run, such as a bad support set). Outputs are
written atomically, so --skip-existing resumes a batch that was killed half-way.
With --samples K --uncertainty, each target also gets <stem>_uncertainty.npy (float32 in [0, 1]),
<stem>_uncertainty.png (heat map, the regions most likely wrong outlined; 2D images),
<stem>_samples.npy (the K sampled label maps) and <stem>_regions.json (ranked regions, image score).
Example:
  universeg-plus segment --support task/ --target scans/ --out predictions/ --overlay
  universeg-plus segment --support task/ --target scans/ --out predictions/ --samples 8 --uncertainty
  universeg-plus segment --support dermoscopy/ --target photos/ --out predictions/ --colour auto
"""

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sup = parser.add_argument_group("support set (labelled examples)")
    sup.add_argument(
        "--support", metavar="DIR",
        help="a folder holding images/ and masks/ (and optionally meta.json with label names), "
        "as SupportSet.from_folder reads it",
    )
    sup.add_argument("--support-images", metavar="DIR", help="folder of example images (2D files or NIfTI volumes)")
    sup.add_argument(
        "--support-masks", metavar="DIR",
        help="folder of their masks: same file stems as the images, or with _mask, _seg, _label or _gt added",
    )
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
    add_prediction_arguments(parser)
    parser.add_argument(
        "--axis", type=int, default=2, choices=(0, 1, 2), metavar="A",
        help="slicing axis for volumes, targets and support alike (0, 1 or 2; default: 2)",
    )
    parser.add_argument(
        "--samples", type=_positive, default=1, metavar="K",
        help="draw K plausible masks (support subsets + paired augmentations); the mask is their mean's (default: 1)",
    )
    parser.add_argument(
        "--uncertainty", action="store_true",
        help="with --samples K > 1: also write <stem>_uncertainty.npy/.png, <stem>_samples.npy, <stem>_regions.json",
    )
    add_device_argument(parser)
    parser.add_argument(
        "--save-probabilities", action="store_true",
        help="also write the probability maps as <stem>_prob.npy (float32; a class axis first for several labels)",
    )
    parser.add_argument(
        "--overlay", action="store_true",
        help="also write <stem>_overlay.png beside each mask: the labels coloured over the image, enlarged, "
        "with a legend of the label names (volumes: the slice with the most foreground)",
    )
    parser.add_argument(
        "--method", choices=("auto", "incontext", "ensemble", "adapt", "unet", "adapt+unet"), default="incontext",
        help="incontext (default): the network with the support set; adapt: a copy fine-tuned on it; unet: a U-Net "
        "trained on it; adapt+unet: their mean; auto: the best of these by leave-one-out on the support set within "
        "--time-budget (docs/methods.md). Trained once, used for every target",
    )
    parser.add_argument(
        "--time-budget", type=float, default=None, metavar="SECONDS",
        help="what --method auto may spend choosing and fitting, per label (default: no limit)",
    )
    add_colour_argument(
        parser, "Needs 2D support image files; a --support-set saved with a projection brings its own"
    )
    more = parser.add_argument_group("adaptation and native resolution")
    more.add_argument(
        "--adapt-steps", type=_positive, default=None, metavar="N",
        help="first fine-tune a copy of the model on the support set for N steps (Predictor.adapt; "
        "300 is about the time of training a small per-task U-Net; with --tiled, on native-scale windows)",
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

    _support_folders(args)
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
    elif args.tiled or args.colour != "luma":  # the examples as read: native sizes (windows), RGB (colour)
        from ..io.images import paired_files

        pairs = paired_files(args.support_images, args.support_masks)
        predictor.set_support([p[1] for p in pairs], [p[2] for p in pairs], max_labels=args.max_labels,
                              colour=args.colour)
    else:
        predictor.set_support(SupportSet.from_folder(
            args.support_images, args.support_masks, size=predictor.input_size, axis=args.axis,
            max_slices=args.support_slices, max_labels=args.max_labels,
        ))
    support = predictor.support
    if args.colour != "luma" or support.colour is not None:
        print(colour_line(predictor.colour.name, predictor.colour_scores))
    args.label_names = _label_names(args)
    labels = ", ".join(_label_name(c, args.label_names) for c in support.classes) or "none (no foreground)"
    print(f"support set: {len(support)} examples; labels: {labels}; device: {predictor.device}")
    predictor.check_options(options=options)  # against the support set: a bad option stops the run first
    _print_plan(args, len(targets), len(support), max(1, len(support.classes)), predictor.support_chunk)
    if args.adapt_steps:
        predictor.adapt(steps=args.adapt_steps, lr=args.adapt_lr, seed=args.seed)

    def segment_one(path: Path, dest: Path, prob: Path | None) -> Any:
        pred = predictor.predict_file(path, dest, axis=args.axis, probabilities_path=prob, options=options)
        if args.uncertainty:
            write_uncertainty(pred, dest.with_name(file_stem(dest)))
        return pred.mask

    return _batch(args, targets, outputs, segment_one)


def write_uncertainty(pred: Any, stem: Path) -> list[Path]:
    """``<stem>_samples.npy``, ``<stem>_uncertainty.png`` (2D: heat map, regions outlined), ``<stem>_regions.json``
    and ``<stem>_uncertainty.npy``, each atomically; ``_uncertainty.npy`` last (it marks the target done)."""
    from ..io.heatmaps import draw_outlines, heat_map
    from ..io.images import write_npy, write_png
    from ..io.json_files import write_json
    from ..uncertainty import region_outlines

    written = [write_npy(stem.with_name(f"{stem.name}_samples.npy"), pred.sample_masks)]
    score = np.asarray(pred.uncertainty_score).tolist()
    if pred.uncertainty.ndim == 2:
        outlines = region_outlines(list(pred.regions), pred.uncertainty.shape)
        picture = draw_outlines(heat_map(pred.uncertainty), outlines)
        written.append(write_png(stem.with_name(f"{stem.name}_uncertainty.png"), picture))
        regions: Any = [r.as_dict() for r in pred.regions]
    else:  # a volume: one list of regions per slice
        regions = [[r.as_dict() for r in slice_regions] for slice_regions in pred.regions]
    info = {"samples": int(pred.sample_masks.shape[0]), "uncertainty_score": score, "regions": regions}
    written.append(write_json(stem.with_name(f"{stem.name}_regions.json"), info))
    written.append(write_npy(stem.with_name(f"{stem.name}_uncertainty.npy"), pred.uncertainty))
    return written


def _options(args: argparse.Namespace) -> Any:
    """The prediction options, checked once; a bad one is named by its flag."""
    from ..options import PredictOptions

    if args.method != "incontext" and args.adapt_steps:
        raise ValueError(
            f"--adapt-steps adapts the in-context model; --method {args.method} trains its own: choose one"
        )
    if args.time_budget is not None and args.method != "auto":
        raise ValueError("--time-budget applies to --method auto")
    if args.tiled and args.method != "incontext":
        raise ValueError("--tiled predicts in-context in windows; --method applies to whole-image mode")
    if args.colour != "luma" and args.support_set is not None:
        raise ValueError(
            f"--colour {args.colour} learns from the support images in colour; a --support-set file holds them grey: "
            "give --support DIR (or --support-images and --support-masks)"
        )
    try:
        if args.uncertainty and args.samples < 2:
            raise ValueError("uncertainty needs --samples K with K >= 2 (the spread of K masks is the uncertainty)")
        return PredictOptions(
            threshold=args.threshold, ensemble=args.ensemble, support_size=args.support_size,
            flips=args.flips, seed=args.seed, samples=args.samples, method=args.method,
            time_budget_s=args.time_budget,
        )
    except (TypeError, ValueError) as exc:
        name, _, rest = str(exc).partition(" ")
        raise ValueError(f"--{name.replace('_', '-')} {rest}") from None


def _support_folders(args: argparse.Namespace) -> None:
    """Exactly one way to give the support set; ``--support DIR`` becomes ``DIR/images`` and ``DIR/masks``."""
    given = [flag for flag, value in (("--support", args.support), ("--support-set", args.support_set),
                                      ("--support-images", args.support_images)) if value]
    if args.support_masks and not args.support_images:
        given.append("--support-masks")
    if len(given) != 1 or (args.support_images is not None) != (args.support_masks is not None):
        got = f" (got {' and '.join(given)})" if given else ""
        raise ValueError(
            "give the labelled examples one way: --support DIR (a folder with images/ and masks/), "
            f"--support-images DIR with --support-masks DIR, or --support-set FILE{got}"
        )
    if args.support:
        root = Path(args.support)
        if not root.is_dir():
            raise FileNotFoundError(f"--support folder not found: {root}")
        missing = [sub for sub in ("images", "masks") if not (root / sub).is_dir()]
        if missing:
            raise FileNotFoundError(
                f"--support {root} must hold images/ and masks/ folders; missing: {', '.join(missing)} "
                "(or give --support-images DIR and --support-masks DIR)"
            )
        args.support_images, args.support_masks = str(root / "images"), str(root / "masks")


def _label_names(args: argparse.Namespace) -> dict[int, str]:
    """Label names from the support folder's meta.json (``{"labels": {"1": "nucleus"}}``), if it has one."""
    from ..io.json_files import read_label_names

    if args.support_images is None:
        return {}
    folder = Path(args.support) if args.support else Path(args.support_images).parent
    try:
        return read_label_names(folder)
    except ValueError as exc:
        log.warning("label names not used: %s", exc)
        return {}


def _label_name(label: int, names: dict[int, str]) -> str:
    return f"{label} {names[label]}" if label in names else f"label {label}"


def _print_plan(args: argparse.Namespace, n_targets: int, n_support: int, n_labels: int, chunk: int) -> None:
    """What the run will cost, before it starts: network passes per image (and adaptation steps)."""
    import math

    if args.tiled:
        print(f"{n_targets} target(s), tiled at native resolution: one network pass per window"
              f"{' x 4 flips' if args.flips else ''} x {n_labels} label(s)")
    else:
        k = args.support_size or (n_support if args.ensemble == 1 else max(1, math.ceil(n_support / 2)))
        chunks = math.ceil(k / chunk)
        passes = args.ensemble * (4 if args.flips else 1) * n_labels * chunks
        parts = [f"{args.ensemble} support subset(s) of {k}"] + (["4 flips"] if args.flips else [])
        parts += [f"{n_labels} label(s)"] + ([f"{chunks} chunks of at most {chunk} examples"] if chunks > 1 else [])
        plain = n_labels * chunks
        print(f"{n_targets} target(s), {passes} network pass(es) per image (per slice of a volume): "
              f"{' x '.join(parts)}"
              + (f"; {passes // plain}x the passes of a plain run (--ensemble 1, no --flips)" if passes > plain else ""))
    if args.adapt_steps:
        print(f"first adapting a copy of the model to the support set: {args.adapt_steps} steps x {n_labels} "
              "label(s) (--adapt-steps)")


def _inferer(args: argparse.Namespace) -> Any:
    """``None`` (the Predictor's default, whole images) or the Tiles inferer of the --tile-* flags."""
    if not args.tiled:
        return None
    from ..inferers import Tiles

    if args.support_set is not None:
        raise ValueError(
            "--tiled needs the native-size examples: give --support DIR (or --support-images and --support-masks)"
        )
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
    names = getattr(args, "label_names", {})
    for path, (dest, prob) in tqdm(list(zip(targets, outputs)), desc="segment", unit="target",
                                   disable=len(targets) < 2):
        overlay = _overlay_path(dest) if args.overlay else None
        marker = dest.with_name(f"{file_stem(dest)}_uncertainty.npy") if args.uncertainty else None
        if args.skip_existing and all(p is None or p.is_file() for p in (dest, prob, overlay, marker)):
            skipped += 1
            log.info("%s: %s exists, skipped", path.name, dest)
            continue
        start = time.perf_counter()
        try:
            mask = segment_one(path, dest, prob)
            if overlay is not None:
                _write_overlay(path, mask, overlay, names, args.axis)
        except (ValueError, TypeError, OSError, RuntimeError) as exc:
            failures.append((path, str(exc)))
            log.warning("%s failed: %s", path.name, exc)
            continue
        shares = ", ".join(
            f"{_label_name(int(c), names)} {100 * float((mask == c).mean()):.1f}%" for c in np.unique(mask) if c
        )
        print(f"{path.name} -> {dest}{' + ' + overlay.name if overlay else ''} ({shares or 'no foreground'}; "
              f"{time.perf_counter() - start:.1f} s)")
    if skipped:
        print(f"skipped {skipped} target(s) whose outputs exist (--skip-existing)")
    if failures:
        flags = getattr(args, "_flags", {})
        print(f"universeg-plus segment: {len(failures)} of {len(targets)} target(s) failed:", file=sys.stderr)
        for path, reason in failures:
            print(f"  {path.name}: {cli_message(reason, flags)}", file=sys.stderr)
        return 1
    return 0


def _overlay_path(dest: Path) -> Path:
    return dest.with_name(f"{file_stem(dest)}_overlay.png")


def _write_overlay(target: Path, mask: Any, dest: Path, names: dict[int, str], axis: int) -> None:
    """The mask coloured over the target (a volume: its slice with the most foreground), as the example draws it."""
    from ..io.images import write_png
    from ..io.inputs import read_input
    from ..io.overlays import overlay_figure

    image = np.asarray(read_input(target, "target").data)
    mask = np.asarray(mask)
    title = target.name
    if mask.ndim == 3:  # a volume: one slice along the slicing axis
        area = (np.moveaxis(mask, axis, 0) != 0).reshape(mask.shape[axis], -1).sum(axis=1)
        k = int(area.argmax())
        image, mask = np.take(image, k, axis=axis), np.take(mask, k, axis=axis)
        title = f"{target.name}, slice {k} of axis {axis}"
    legend = {int(c): _label_name(int(c), names) for c in np.unique(mask) if c}
    write_png(dest, overlay_figure(image, [(title, mask)], legend))
