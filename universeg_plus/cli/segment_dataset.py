"""``universeg-plus segment-dataset``: segment a folder, glob or manifest on Ray (extra ``[cluster]``)."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..io.inputs import MAX_LABELS
from ._device import add_device_argument
from ._predict_args import add_colour_argument, add_prediction_arguments, colour_line
from ._types import positive_int as _positive

COMMAND = "segment-dataset"
HELP = "segment a whole dataset on a Ray actor pool (this machine or a cluster), resumably"
DESCRIPTION = """\
Segment every input of INPUTS with one support set on Ray Data: a folder of images/volumes, a glob
('scans/**/*.nii.gz', sub-folders kept in --out), or a CSV/Parquet manifest with a 'path' column and an
optional 'output' column (names relative to --out). Each worker holds one model; model and support set
are loaded once here and shared through Ray's object store. Outputs are the files `universeg-plus
segment` writes (PNG label maps, NIfTI with the input's affine, NPY), written atomically.
A report CSV (input, output, status, error, seconds, worker) lists every input; a bad input is a
'failed' row, not the end of the run; a worker that dies is restarted and its inputs retried.
Rerun what failed (or was not reached after Ctrl-C) with --only-failed REPORT.
Without --address a private Ray instance is started on 127.0.0.1 (no dashboard, no usage stats).
Needs: pip install 'universeg-plus[cluster]'.
Examples:
  universeg-plus segment-dataset scans/ --support support/ --out masks/ --num-workers 2
  universeg-plus segment-dataset photos/ --support dermoscopy/ --out masks/ --colour auto
  universeg-plus segment-dataset manifest.parquet --support support/ --out /shared/masks \\
      --address auto --num-workers 8 --gpus-per-worker 1 --skip-existing
"""

#: Options not repeated in the printed rerun command (the rerun takes its inputs from the report).
_NOT_RERUN = {"help", "only_failed", "inputs", "skip_existing"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "inputs", nargs="?", metavar="INPUTS",
        help="a folder, a quoted glob ('scans/**/*.png') or a .csv/.parquet manifest with a 'path' column",
    )
    parser.add_argument(
        "--support", required=True, metavar="PATH",
        help="the labelled examples: a folder holding images/ and masks/ (same stems), or a .safetensors "
        "support set from SupportSet.save",
    )
    parser.add_argument("--support-masks", metavar="DIR", help="masks folder, when --support is the images folder")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created; atomic writes)")
    parser.add_argument(
        "--report", metavar="CSV", default=None,
        help="report path (default: OUT/segment-dataset-report.csv; with --only-failed: that report, updated)",
    )
    parser.add_argument(
        "--only-failed", metavar="REPORT", default=None,
        help="rerun only the inputs of a previous report that failed or were not run (instead of INPUTS)",
    )
    parser.add_argument(
        "--skip-existing", action="store_true",
        help="skip inputs whose output exists (outputs are written atomically, so they are complete)",
    )
    ray_args = parser.add_argument_group("Ray")
    ray_args.add_argument(
        "--address", default=None, metavar="ADDR",
        help="an existing Ray cluster: 'auto' (on a cluster node), 'ray://head:10001' or 'head:6379' "
        "(default: a local instance on 127.0.0.1)",
    )
    ray_args.add_argument("--num-workers", type=_positive, default=1, metavar="N", help="actors, one model each (default: 1)")
    ray_args.add_argument(
        "--cpus-per-worker", type=float, default=1.0, metavar="X", help="Ray CPUs per actor, also its torch threads (default: 1)"
    )
    ray_args.add_argument(
        "--gpus-per-worker", type=float, default=0.0, metavar="X",
        help="Ray GPUs per actor (0.5: two actors share a GPU; default: 0, CPU actors)",
    )
    ray_args.add_argument(
        "--batch-size", type=_positive, default=1, metavar="N", help="inputs per Ray task; a retry redoes them (default: 1)"
    )
    ray_args.add_argument(
        "--max-retries", type=int, default=3, metavar="N",
        help="retries of a task whose worker died, then its inputs are 'failed' (default: 3)",
    )
    pred = parser.add_argument_group("prediction (as `universeg-plus segment`)")
    pred.add_argument(
        "--model", default=None, metavar="NAME",
        help="registered model name with pretrained weights (default: the best one, see `universeg-plus models`)",
    )
    pred.add_argument(
        "--random-weights", action="store_true", help="allow a --model without pretrained weights (meaningless masks)"
    )
    add_device_argument(
        pred, "resolved by each worker on its node: CUDA when available to it, i.e. its Ray GPU from "
        "--gpus-per-worker, else CPU",
    )
    add_prediction_arguments(pred)
    add_colour_argument(
        pred, "Fitted once here on the support folder's 2D image files; every worker projects its targets "
        "alike. A .safetensors --support saved with a projection brings its own",
    )
    pred.add_argument(
        "--axis", type=int, default=2, choices=(0, 1, 2), metavar="A", help="slicing axis of volumes (default: 2)"
    )
    pred.add_argument(
        "--max-labels", type=_positive, default=MAX_LABELS, metavar="N",
        help=f"most labels a support mask may hold (default: {MAX_LABELS})",
    )
    pred.add_argument(
        "--support-slices", type=_positive, default=16, metavar="N",
        help="foreground slices taken per support volume (default: 16)",
    )
    parser.set_defaults(_options=[  # each option by its first long name (--colour, not its alias --color)
        (next(o for o in a.option_strings if o.startswith("--")), a.dest, a.default, a.nargs == 0)
        for a in parser._actions if a.option_strings and a.dest not in _NOT_RERUN
    ])


def rerun_command(args: argparse.Namespace, report: str) -> str:
    """The command that reruns the failed inputs of ``report`` with this run's options."""
    words = ["universeg-plus", "segment-dataset", "--only-failed", report]
    for flag, dest, default, is_switch in args._options:
        value = getattr(args, dest)
        if value == default or (dest == "report" and value == report):
            continue
        words += [flag] if is_switch else [flag, str(value)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from ..cluster import DatasetInterrupted, segment_dataset

    if (args.inputs is None) == (args.only_failed is None):
        raise ValueError("give INPUTS (a folder, glob or manifest) or --only-failed REPORT, one of the two")
    support = (args.support, args.support_masks) if args.support_masks else args.support
    try:
        result = segment_dataset(
            args.inputs, support, args.out, model=args.model, pretrained=False if args.random_weights else None,
            only_failed=args.only_failed, report=args.report, skip_existing=args.skip_existing, address=args.address,
            num_workers=args.num_workers, cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker,
            batch_size=args.batch_size, max_retries=args.max_retries, device=args.device, axis=args.axis,
            threshold=args.threshold, ensemble=args.ensemble, support_size=args.support_size, flips=args.flips,
            seed=args.seed, max_labels=args.max_labels, support_slices=args.support_slices, colour=args.colour,
        )
    except DatasetInterrupted as stop:
        _summary(args, stop.run)
        raise
    return _summary(args, result)


def _summary(args: argparse.Namespace, result: object) -> int:
    if result.colour != "luma" or args.colour != "luma":
        print(colour_line(result.colour, result.colour_scores))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.counts.items()))
    print(f"segment-dataset: {counts} in {result.seconds:.1f} s; report: {result.report}")
    if result.failed:
        for row in result.failed[:10]:
            print(f"  {row['status']}: {row['input']}: {row['error']}", file=sys.stderr)
        if len(result.failed) > 10:
            print(f"  ... and {len(result.failed) - 10} more (see the report)", file=sys.stderr)
        print(f"rerun them with:\n  {rerun_command(args, str(result.report))}", file=sys.stderr)
        return 1
    return 0
