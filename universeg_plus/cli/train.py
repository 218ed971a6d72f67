"""``universeg-plus train``: train from a YAML run config (``--set key=value`` overrides)."""

from __future__ import annotations

import argparse
import json

from ._config_args import add_config_arguments

COMMAND = "train"
HELP = "train a model from a YAML run config (works under torchrun for several processes)"
DESCRIPTION = (
    "Train an in-context segmentation model on task folders and synthetic tasks. "
    "Example: universeg-plus train --config configs/tiny.yaml --set data.root=/data/tasks --set train.steps=100. "
    "The shipped configs read their task folders from $UNIVERSEG_PLUS_TASKS. "
    "Several processes: torchrun --nproc_per_node 2 -m universeg_plus train --config ..."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, "YAML run config (see configs/)", "train.steps=500 --set data.root=/data/tasks")
    parser.add_argument(
        "--resume", default=None, metavar="PATH", help="checkpoint to resume from ('auto': <out_dir>/last.pt)"
    )
    parser.add_argument(
        "--init",
        default=None,
        metavar="FOLDER",
        help="warm start: initialise the model from a weights folder (e.g. weights/universeg-small) with a "
        "fresh optimiser and schedule (ignored when resuming)",
    )
    parser.add_argument(
        "--export-tasks",
        default=None,
        metavar="PATH",
        help="read data.root at the training size, write every task (held-out ones too) to PATH and exit; "
        "train elsewhere with --set data.tasks_file=PATH (no PNG decoding needed there)",
    )


def run(args: argparse.Namespace) -> int:
    from ..train.config import load_run_config

    overrides = list(args.overrides)
    if args.resume is not None:
        overrides.append(f"train.resume={args.resume}")
    if args.init is not None:
        overrides.append(f"train.init={args.init}")
    cfg = load_run_config(args.config, overrides)
    if args.print_config:
        print(json.dumps(cfg.model_dump(mode="json"), indent=2))
        return 0
    if args.export_tasks is not None:
        from ..data.tasks import load_task_root

        if cfg.data.root is None:
            raise ValueError("--export-tasks needs data.root (set it in the config or with --set data.root=PATH)")
        coll = load_task_root(
            cfg.data.root, cfg.image_size, exclude=cfg.data.exclude, min_pixels=cfg.data.min_pixels
        )
        coll.save(args.export_tasks)
        print(f"wrote {coll!r} at {cfg.image_size[0]}x{cfg.image_size[1]} to {args.export_tasks}")
        return 0
    from ..train.loop import train

    summary = train(cfg)
    if summary.pop("rank") == 0:
        print(json.dumps(summary))
    return 0
