"""The ablation report: tidy CSVs, plots and the markdown comparison of the variants.

Files written into ``out_dir`` by :func:`write_report`:

* ``accuracy_per_task.csv``: one row per (variant, seed, task, method, S): Dice over the task's targets;
* ``accuracy_per_seed.csv``: one row per (variant, seed, method, S): mean Dice over the tasks;
* ``accuracy_task_summary.csv``: one row per (variant, task, method, S): mean, std, min, max over seeds;
* ``accuracy.csv``: one row per (variant, method, S): mean, std, min, max over seeds of the per-seed
  mean Dice, the difference to the baseline and the verdict;
* ``robustness_per_seed.csv``: one row per (variant, seed, perturbation, severity, where): mean Dice
  and Dice drop over tasks and targets;
* ``robustness.csv``: the same over seeds (mean, std, min, max) with the difference to the baseline;
* ``speed.csv``: ms per target per (variant, backend): median and min-max over rounds, ratios;
* ``dice_vs_support.png``, ``dice_drop_vs_severity.png`` (:mod:`.plots`); ``ablation.md`` (:mod:`.markdown`).

Rows come from the stages' outputs (:mod:`.collect`), spreads and verdicts from :mod:`.stats`.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..io.atomic import atomic_write_text
from ..io.tables import write_csv
from .collect import accuracy_per_seed, collect_accuracy, collect_robustness, read_speed, robustness_over_severities
from .config import AblationConfig
from .markdown import markdown_report
from .plots import plot_dice_vs_support, plot_drop_vs_severity
from .stats import over_seeds, strip_values, with_verdicts

__all__ = [
    "ACCURACY_FIELDS",
    "PER_SEED_FIELDS",
    "PER_TASK_FIELDS",
    "ROBUSTNESS_FIELDS",
    "ROB_SEED_FIELDS",
    "SPEED_REPORT_FIELDS",
    "TASK_SUMMARY_FIELDS",
    "write_report",
]

log = logging.getLogger(__name__)

PER_TASK_FIELDS = [
    "variant", "seed", "task", "dataset", "method", "requested_support", "support_size", "ensemble",
    "n_targets", "dice_mean", "dice_std", "iou_mean", "hd95_mean",
]
PER_SEED_FIELDS = ["variant", "seed", "method", "requested_support", "n_tasks", "dice"]
SPREAD_FIELDS = ["n_seeds", "mean", "std", "min", "max"]
TASK_SUMMARY_FIELDS = ["variant", "task", "method", "requested_support", *(f"dice_{k}" for k in SPREAD_FIELDS)]
ACCURACY_FIELDS = [
    "variant", "method", "requested_support", *(f"dice_{k}" for k in SPREAD_FIELDS), "delta_vs_baseline", "verdict",
]
ROB_SEED_FIELDS = ["variant", "seed", "perturbation", "severity", "where", "n_rows", "dice", "dice_drop"]
ROBUSTNESS_FIELDS = [
    "variant", "perturbation", "severity", "where", *(f"drop_{k}" for k in SPREAD_FIELDS), "delta_vs_baseline",
    "verdict",
]
SPEED_REPORT_FIELDS = [
    "variant", "backend", "support_size", "image_size", "batch_size", "rounds", "ms_median", "ms_min", "ms_max",
    "ratio_to_baseline", "ratio_to_eager", "verdict",
]


def write_report(
    cfg: AblationConfig, out_dir: str | os.PathLike | None = None, command: str | None = None
) -> dict[str, Path]:
    """Aggregate what the stages produced into CSVs, plots and ``ablation.md`` (also ``report.docs_path``).

    Args:
        cfg: The ablation.
        out_dir: Where to write (default ``cfg.out_dir``).
        command: The command line to quote in the report.

    Returns:
        ``{name: path}`` of every file written.
    """
    out = Path(out_dir or cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    base = cfg.baseline_label

    per_task = collect_accuracy(cfg)
    per_seed = accuracy_per_seed(per_task)
    task_summary = over_seeds(per_task, ["variant", "task", "method", "requested_support"], "dice_mean", "dice")
    acc = with_verdicts(over_seeds(per_seed, ["variant", "method", "requested_support"], "dice", "dice"),
                        ["method", "requested_support"], base)
    rob_seed = collect_robustness(cfg)
    rob = with_verdicts(
        over_seeds(rob_seed, ["variant", "perturbation", "severity", "where"], "dice_drop", "drop"),
        ["perturbation", "severity", "where"], base,
    )
    rob_avg = with_verdicts(
        over_seeds(robustness_over_severities(rob_seed), ["variant", "perturbation", "where"], "dice_drop", "drop"),
        ["perturbation", "where"], base,
    )
    speed, _ = read_speed(cfg)

    if per_task:
        paths["accuracy_per_task"] = write_csv(per_task, PER_TASK_FIELDS, out / "accuracy_per_task.csv")
        paths["accuracy_per_seed"] = write_csv(per_seed, PER_SEED_FIELDS, out / "accuracy_per_seed.csv")
        paths["accuracy_task_summary"] = write_csv(task_summary, TASK_SUMMARY_FIELDS, out / "accuracy_task_summary.csv")
        paths["accuracy"] = write_csv(acc, ACCURACY_FIELDS, out / "accuracy.csv")
    if rob_seed:
        paths["robustness_per_seed"] = write_csv(rob_seed, ROB_SEED_FIELDS, out / "robustness_per_seed.csv")
        paths["robustness"] = write_csv(rob, ROBUSTNESS_FIELDS, out / "robustness.csv")
    if speed:
        paths["speed"] = write_csv(speed, SPEED_REPORT_FIELDS, out / "speed.csv")
    plots = {}
    p = plot_dice_vs_support(acc, cfg.labels, out / "dice_vs_support.png")
    if p is not None:
        plots["dice_vs_support"] = p
    p = plot_drop_vs_severity(rob, cfg.labels, out / "dice_drop_vs_severity.png")
    if p is not None:
        plots["dice_drop_vs_severity"] = p
    paths.update(plots)

    acc_s, rob_s, rob_avg_s = strip_values(acc), strip_values(rob), strip_values(rob_avg)
    tables = (per_task, acc_s, rob_s, rob_avg_s, speed)
    text = markdown_report(cfg, *tables, {k: v.name for k, v in plots.items()}, command)
    paths["markdown"] = atomic_write_text(out / "ablation.md", text)
    if cfg.report.docs_path:
        docs = Path(cfg.report.docs_path)
        img_dir = docs.parent / "images" / docs.stem
        img_dir.mkdir(parents=True, exist_ok=True)
        links = {}
        for k, v in plots.items():
            shutil.copyfile(v, img_dir / v.name)
            links[k] = f"images/{docs.stem}/{v.name}"
        paths["docs"] = atomic_write_text(
            docs, markdown_report(cfg, *tables, links, command)
        )
    log.info("ablation report written to %s", paths["markdown"])
    return paths
