"""``universeg-plus tune``: MetaSchedule-tune a model's kernels into the database that level O3 applies."""

from __future__ import annotations

import argparse

from .compile import add_model_arguments

COMMAND = "tune"
HELP = "tune a model's kernels with TVM MetaSchedule (a trial budget, a persistent database) for level O3"
DESCRIPTION = (
    "Tune the most expensive fused kernels of a model for one static support size, image size and "
    "target; records are added to a persistent database that `universeg-plus compile --level O3` "
    "(and universeg_plus.compile(level='O3')) reuse for the same target and shapes. Each tuned "
    "kernel's O2 schedule is measured too and stored as a record, so O3 applies per kernel the "
    "faster of the best tuned schedule and O2's. Tuning costs minutes per kernel on a small CPU. "
    "Example: universeg-plus tune universeg-v1 --support-size 64 --trials 256 --max-kernels 6"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--support-size", type=int, required=True, help="static S to tune for")
    parser.add_argument("--trials", type=int, default=256, help="total measured trials (default 256)")
    parser.add_argument("--max-trials-per-task", type=int, default=None, help="cap per kernel (default: --trials)")
    parser.add_argument("--max-kernels", type=int, default=None, help="tune only the N most expensive kernels")
    parser.add_argument("--trials-per-round", type=int, default=16, help="candidates per search round (default 16)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import json

    from ..backends import tune
    from .compile import load_model

    model = load_model(args).eval()
    size = tuple(args.image_size) if args.image_size else tuple(model.config.input_size)
    target = json.loads(args.target) if args.target and args.target.strip().startswith("{") else args.target
    report = tune(
        model,
        support_size=args.support_size,
        image_size=size,
        batch_size=args.batch_size,
        target=target,
        trials=args.trials,
        max_trials_per_task=args.max_trials_per_task,
        max_kernels=args.max_kernels,
        tuning_dir=args.tuning_dir,
        seed=args.seed,
        trials_per_round=args.trials_per_round,
    )
    print(f"tuned {len(report.tuned)} kernels ({100 * report.tuned_flops_fraction:.0f}% of the FLOPs) "
          f"with {report.trials} trials in {report.seconds:.0f} s")
    for k in report.kernels:
        print(f"  {k.summary()}")
    print(f"database {report.tuning_dir}")
    print("compile with: universeg-plus compile " + args.model + f" --level O3 --support-size {args.support_size}")
    return 0
