"""``universeg-plus ablate``: train every variant x seed under one recipe and compare them."""

from __future__ import annotations

import argparse
import shlex

from ._config_args import add_config_arguments

COMMAND = "ablate"
HELP = "ablation study: train variants x seeds, evaluate, robustness, speed, report (resumable)"
DESCRIPTION = (
    "Trains every variant of an ablation YAML (see configs/ablation.yaml) with each seed from scratch, "
    "evaluates them on the same held-out tasks at several S, runs the robustness study on them, times them "
    "(eager and TVM where configured) and writes CSVs, plots and <out_dir>/ablation.md. Rerunning skips "
    "finished work; an interrupted training resumes from its last.pt. The data the stages need is checked "
    "before any starts (configs/ablation.yaml reads the task folders from $UNIVERSEG_PLUS_TASKS). "
    "Example: universeg-plus ablate --config configs/ablation.yaml --stage train"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(
        parser, "ablation YAML file (see configs/ablation.yaml)", "seeds=[0,1,2] --set out_dir=runs/abl2"
    )
    parser.add_argument(
        "--stage", action="append", choices=["train", "evaluate", "robustness", "speed", "report", "all"],
        help="stage(s) to run, in pipeline order (repeatable; default: all)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _command(args: argparse.Namespace) -> str:
    parts = ["universeg-plus", "ablate", "--config", args.config]
    for o in args.overrides:
        parts += ["--set", o]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    from ..ablation import load_ablation_config, run_ablation

    cfg = load_ablation_config(args.config, args.overrides)
    if args.print_config:
        print(cfg.model_dump_json(indent=2))
        return 0
    stages = args.stage or ["all"]
    result = run_ablation(cfg, stages, progress=not args.no_progress, command=_command(args))
    for stage, value in result.items():
        if stage == "train":
            done = sum(r["status"] == "done" for r in value)
            skipped = sum(r["status"] == "skipped" for r in value)
            print(f"train: {done} run(s) trained, {skipped} already done, {len(value) - done - skipped} unfinished")
        elif stage == "evaluate":
            print(f"evaluate: {sum(r['status'] == 'done' for r in value)} model(s) evaluated, "
                  f"{sum(r['status'] == 'skipped' for r in value)} already done")
        elif stage == "robustness":
            print(f"robustness: {value.rows_written} new row(s), {value.rows_skipped} already present: "
                  f"{value.csv_path}")
        elif stage == "speed":
            print(f"speed: {value}")
        elif stage == "report":
            print(f"report: {value['markdown']}" + (f" and {value['docs']}" if "docs" in value else ""))
    return 0
