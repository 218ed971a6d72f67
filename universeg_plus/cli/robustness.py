"""``universeg-plus robustness``: run the robustness study grid and write its report."""

from __future__ import annotations

import argparse

from ._config_args import add_config_arguments

COMMAND = "robustness"
HELP = "run a robustness study (perturbations x severities x variants x backends) and write CSV, plots, summary"
DESCRIPTION = (
    "Runs the grid in a study YAML file (see examples/robustness_study.yaml), appending to "
    "<out_dir>/results.csv (rows already there are skipped, so an interrupted run resumes), then writes "
    "dice_vs_severity_<where>.png, dice_drop_heatmap.png, saliency.png and summary.md."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, "study YAML file (see examples/robustness_study.yaml)", "severities=[1,5]")
    parser.add_argument("--out-dir", help="output folder (overrides out_dir)")
    parser.add_argument("--report-only", action="store_true", help="only rewrite plots and summary from the CSV")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..robustness import load_study_config, run_study, write_report

    overrides = list(args.overrides)
    if args.out_dir:
        overrides.append(f"out_dir={Path(args.out_dir).resolve()}")
    config = load_study_config(args.config, overrides)
    if args.print_config:
        print(config.model_dump_json(indent=2))
        return 0
    if args.report_only:
        paths = write_report(Path(config.out_dir) / "results.csv", config.out_dir)
        print(f"summary: {paths['summary']}")
        return 0
    result = run_study(config, progress=not args.no_progress)
    for b, why in result.skipped_backends.items():
        print(f"skipped backend {b}: {why}")
    print(f"{result.rows_written} new row(s), {result.rows_skipped} already present: {result.csv_path}")
    print(f"summary: {Path(config.out_dir) / 'summary.md'}")
    return 0
