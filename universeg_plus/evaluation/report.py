"""Evaluation reports: per-target CSV, per-(task, S, method) summary CSV and a markdown table.

Files written by :func:`write_report` into the output folder (each atomically):

* ``per_target.csv``: one row per (task, requested S, method, target) with every metric;
* ``summary.csv``: one row per (task, requested S, method): mean and std of Dice over the targets,
  means of IoU, sensitivity, specificity and HD95 (over targets where it is finite; ``hd95_undefined``
  counts targets where exactly one of prediction and reference is empty);
* ``timings.csv``: one row per (task, requested S, method): the wall time that method spent on the
  task's targets (support preparation, U-Net training or adaptation included);
* ``results.md``: the Dice table (task x S, one column per method) with a mean row per S, the
  head-to-head count against the U-Net, the wall-time table and the table of all metrics.

``per_target.csv`` and ``summary.csv`` are deterministic (same settings and seed, same bytes);
wall times are not, so they live in their own file.
"""

from __future__ import annotations

import csv
import math
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write_text
from ..io.tables import write_csv
from .runner import METHODS, EvaluationResult

__all__ = [
    "RECORD_FIELDS",
    "SUMMARY_FIELDS",
    "TIMING_FIELDS",
    "default_headline_support",
    "headline",
    "markdown_report",
    "markdown_table",
    "read_csv",
    "summarize",
    "table_notes",
    "timing_table",
    "write_csv",
    "write_report",
]

# what identifies one evaluated setting: the first columns of every record and summary row
_SETTING_FIELDS = ["task", "dataset", "method", "requested_support", "support_size", "ensemble"]
RECORD_FIELDS = [
    *_SETTING_FIELDS,
    "target",
    "stem",
    "dice",
    "iou",
    "sensitivity",
    "specificity",
    "hd95",
]
SUMMARY_FIELDS = [
    *_SETTING_FIELDS,
    "n_targets",
    "dice_mean",
    "dice_std",
    "iou_mean",
    "sensitivity_mean",
    "specificity_mean",
    "hd95_mean",
    "hd95_undefined",
]
_STR_FIELDS = {"task", "dataset", "method", "stem"}
TIMING_FIELDS = ["task", "dataset", "method", "requested_support", "support_size", "wall_s"]
_INT_FIELDS = {"requested_support", "support_size", "ensemble", "target", "n_targets", "hd95_undefined"}
_LABELS = {
    "universeg": "UniverSeg",
    "universeg_colour_fisher": "UniverSeg, colour: Fisher projection",
    "universeg_colour_auto": "UniverSeg, colour: leave-one-out choice",
    "universeg_ensemble": "UniverSeg ensemble",
    "universeg_adapt": "UniverSeg + adapt",
    "universeg_adapt_mix": "UniverSeg + adapt, mixed with UniverSeg",
    "universeg_adapt_tiled": "UniverSeg + adapt, tiled",
    "unet": "U-Net (per task)",
    "unet_prior": "U-Net + UniverSeg prior",
    "adapt_unet": "UniverSeg + adapt, mixed with the U-Net",
    "auto": "auto (leave-one-out choice)",
    "unet_equal_time": "U-Net, equal wall time",
}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def summarize(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate per-target records into one row per (task, requested S, method), in first-seen order."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        key = (
            r["task"],
            r["dataset"],
            r["method"],
            int(r["requested_support"]),
            int(r["support_size"]),
            int(r["ensemble"]),
        )
        groups.setdefault(key, []).append(r)
    out = []
    for (task, dataset, method, req, s, ens), rows in groups.items():
        dice = [float(r["dice"]) for r in rows]
        hd = [float(r["hd95"]) for r in rows]
        finite = [h for h in hd if math.isfinite(h)]
        out.append(
            {
                "task": task,
                "dataset": dataset,
                "method": method,
                "requested_support": req,
                "support_size": s,
                "ensemble": ens,
                "n_targets": len(rows),
                "dice_mean": _mean(dice),
                "dice_std": statistics.stdev(dice) if len(dice) > 1 else 0.0,
                "iou_mean": _mean([float(r["iou"]) for r in rows]),
                "sensitivity_mean": _mean([float(r["sensitivity"]) for r in rows]),
                "specificity_mean": _mean([float(r["specificity"]) for r in rows]),
                "hd95_mean": _mean(finite),
                "hd95_undefined": len(hd) - len(finite),
            }
        )
    return out


def read_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a ``per_target.csv`` or ``summary.csv`` back with numbers as int/float.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a CSV without the ``task``/``method`` columns.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} does not exist")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"task", "method"} <= set(reader.fieldnames):
            raise ValueError(f"{path} is not an evaluation CSV (needs task and method columns)")
        rows = []
        for r in reader:
            rows.append(
                {
                    k: (v if k in _STR_FIELDS else int(v) if k in _INT_FIELDS else float(v))
                    for k, v in r.items()
                }
            )
    return rows


def _methods(summary: Sequence[dict[str, Any]]) -> list[str]:
    present = {r["method"] for r in summary}
    return [m for m in METHODS if m in present]


def headline(summary: Sequence[dict[str, Any]], support_size: int = 16) -> dict[str, Any]:
    """Mean Dice over tasks per method at one requested S, and the head-to-head count vs the U-Net.

    Returns:
        ``{"support_size", "tasks", "mean_dice": {method: value}, "wins": {method: k}, "compared": n}``;
        ``wins[m]`` counts tasks where method ``m`` has a higher mean Dice than ``unet`` (empty
        without baseline rows).
    """
    rows = [r for r in summary if int(r["requested_support"]) == support_size]
    by = {(r["task"], r["method"]): float(r["dice_mean"]) for r in rows}
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    mean = {}
    for m in _methods(rows):
        vals = [by[(t, m)] for t in tasks if (t, m) in by]
        mean[m] = _mean(vals)
    wins: dict[str, int] = {}
    compared = 0
    if "unet" in mean:
        pairs = [t for t in tasks if (t, "unet") in by]
        compared = len(pairs)
        for m in mean:
            if m != "unet":
                wins[m] = sum(by[(t, m)] > by[(t, "unet")] for t in pairs if (t, m) in by)
    return {"support_size": support_size, "tasks": len(tasks), "mean_dice": mean, "wins": wins, "compared": compared}


def _s_label(req: int, actual: int) -> str:
    return str(req) if req == actual else f"{req} → {actual}"


def markdown_table(summary: Sequence[dict[str, Any]]) -> str:
    """Dice (mean ± std over targets) per task and requested S, one column per method, then one
    mean-over-tasks row per S. ``64 → 26`` means S=64 was asked and the task's pool allowed 26;
    ``†`` marks ensemble cells with fewer members than requested (pool too small)."""
    methods = _methods(summary)
    if not methods:
        return "_no results_\n"
    sizes = list(dict.fromkeys(int(r["requested_support"]) for r in summary))
    n_ens = max((int(r["ensemble"]) for r in summary if r["method"] == "universeg_ensemble"), default=1)
    heads = [_LABELS[m] + (f" ×{n_ens}" if m == "universeg_ensemble" else "") for m in methods]
    lines = ["| task | S | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(methods)]
    cells: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for r in summary:
        cells.setdefault((r["task"], int(r["requested_support"])), {})[r["method"]] = r
    for (task, req), by_m in cells.items():
        actual = next(iter(by_m.values()))["support_size"]
        row = []
        for m in methods:
            r = by_m.get(m)
            if r is None:
                row.append("—")
                continue
            mark = "†" if m == "universeg_ensemble" and int(r["ensemble"]) < n_ens else ""
            row.append(f"{float(r['dice_mean']):.3f} ± {float(r['dice_std']):.3f}{mark}")
        lines.append(f"| {task} | {_s_label(req, int(actual))} | " + " | ".join(row) + " |")
    for s in sizes:
        h = headline(summary, s)
        row = [f"**{h['mean_dice'][m]:.3f}**" if m in h["mean_dice"] else "—" for m in methods]
        lines.append(f"| **mean over {h['tasks']} tasks** | {s} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def table_notes(summary: Sequence[dict[str, Any]]) -> str:
    """The legend for the marks :func:`markdown_table` uses (empty when none appears)."""
    notes = []
    if any(int(r["requested_support"]) != int(r["support_size"]) for r in summary):
        notes.append("`16 → 9`: S=16 was asked, the task had 9 support candidates (all used)")
    n_ens = max((int(r["ensemble"]) for r in summary if r["method"] == "universeg_ensemble"), default=1)
    if any(r["method"] == "universeg_ensemble" and int(r["ensemble"]) < n_ens for r in summary):
        notes.append("`†`: the support set is the whole pool, so there is one ensemble member")
    return ("Notes: " + "; ".join(notes) + ".\n") if notes else ""


def default_headline_support(summary: Sequence[dict[str, Any]], preferred: int = 16) -> int:
    """``preferred`` when the summary has it, else the largest requested S."""
    sizes = {int(r["requested_support"]) for r in summary}
    return preferred if preferred in sizes or not sizes else max(sizes)


def timing_table(timings: Sequence[dict[str, Any]]) -> str:
    """Wall seconds per task and requested S, one column per method, then the mean over tasks per S."""
    methods = [m for m in METHODS if m in {r["method"] for r in timings}]
    if not methods:
        return ""
    cells: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for r in timings:
        cells.setdefault((r["task"], int(r["requested_support"])), {})[r["method"]] = r
    lines = ["| task | S | " + " | ".join(_LABELS[m] for m in methods) + " |", "|---|---|" + "---|" * len(methods)]
    for (task, req), by_m in cells.items():
        actual = int(next(iter(by_m.values()))["support_size"])
        row = [f"{float(by_m[m]['wall_s']):.1f}" if m in by_m else "—" for m in methods]
        lines.append(f"| {task} | {_s_label(req, actual)} | " + " | ".join(row) + " |")
    for s in dict.fromkeys(req for _, req in cells):
        row = []
        for m in methods:
            vals = [float(by_m[m]["wall_s"]) for (_, req), by_m in cells.items() if req == s and m in by_m]
            row.append(f"**{_mean(vals):.1f}**" if vals else "—")
        n = sum(1 for _, req in cells if req == s)
        lines.append(f"| **mean over {n} tasks** | {s} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _metrics_table(summary: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| task | S | method | Dice | IoU | sensitivity | specificity | HD95 (px) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        hd = float(r["hd95_mean"])
        hd_s = "—" if not math.isfinite(hd) else f"{hd:.1f}"
        if int(r["hd95_undefined"]):
            hd_s += f" ({r['hd95_undefined']} undef.)"
        lines.append(
            f"| {r['task']} | {_s_label(int(r['requested_support']), int(r['support_size']))} | {r['method']} | "
            f"{float(r['dice_mean']):.3f} | {float(r['iou_mean']):.3f} | {float(r['sensitivity_mean']):.3f} | "
            f"{float(r['specificity_mean']):.3f} | {hd_s} |"
        )
    return "\n".join(lines) + "\n"


def _headline_text(summary: Sequence[dict[str, Any]], support_size: int) -> str:
    h = headline(summary, support_size)
    if not h["tasks"]:
        return ""
    parts = [f"{_LABELS[m]} {v:.3f}" for m, v in h["mean_dice"].items()]
    text = f"At S={support_size}: mean Dice over {h['tasks']} tasks: " + ", ".join(parts) + "."
    if h["compared"]:
        text += " Ahead of the per-task U-Net on " + ", ".join(
            f"{k}/{h['compared']} tasks ({_LABELS[m]})" for m, k in h["wins"].items()
        ) + "."
    return text


def markdown_report(
    summary: Sequence[dict[str, Any]],
    info: dict[str, Any] | None = None,
    headline_support: int = 16,
    timings: Sequence[dict[str, Any]] = (),
) -> str:
    """The full ``results.md`` text: settings, headline, Dice table, wall times and all-metrics table."""
    out = ["# Evaluation on held-out tasks", ""]
    for k, v in (info or {}).items():
        out.append(f"- {k}: {v}")
    if info:
        out.append("")
    text = _headline_text(summary, headline_support)
    if text:
        out += [text, ""]
    out += ["## Dice (mean ± std over targets)", "", markdown_table(summary)]
    notes = table_notes(summary)
    if notes:
        out += [notes]
    if timings:
        out += ["## Wall time per task (seconds, this machine)", "", timing_table(timings)]
    out += ["## All metrics", "", _metrics_table(summary)]
    return "\n".join(out)


def write_report(result: EvaluationResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``per_target.csv``, ``summary.csv`` and ``results.md`` into ``out_dir``.

    Returns:
        ``{"per_target": path, "summary": path, "timings": path, "markdown": path}``.
    """
    out = Path(out_dir)
    summary = summarize(result.records)
    s = result.settings
    info = {
        **result.info,
        "evaluation size": (
            "native (each image at its own size; the model runs at its input size, probabilities are "
            "upsampled as the Predictor does)"
            if result.resolution == "native"
            else result.resolution
        ),
        "targets per task": f"up to {s.num_targets} (at most {s.max_target_fraction:g} of the task's pairs)",
        "support sizes": ", ".join(str(x) for x in s.support_sizes),
        "ensemble": (
            f"{s.ensemble} support sets, probabilities averaged"
            + ("" if s.ensemble_max_support is None else f", for S <= {s.ensemble_max_support}")
            if s.ensemble > 1
            else "off"
        ),
        "threshold": s.threshold,
        "seed": s.seed,
    }
    if s.baseline:
        b = s.baseline_config
        info["U-Net baseline"] = (
            f"trained from scratch per (task, S) on the same support set: {b.steps} Adam steps, lr {b.lr:g}, "
            f"batch {b.batch_size}, width {b.width}, depth {b.depth}, Dice+BCE, "
            + ("affine/flip/intensity augmentation" if b.augment else "no augmentation")
        )
    if s.adapt is not None and s.adapt.steps:
        a = s.adapt
        info["adaptation"] = (
            f"a copy of the model fine-tuned per (task, S) on its support set: {a.steps} steps, lr {a.lr:g}, "
            f"parts {a.parts}, {a.batch_size} leave-out episodes of {a.episode_support or 'S-1'} support per step"
            + (f" at {a.size[0]}x{a.size[1]}" if a.size else "")
            + (", augmented" if a.augment else "")
        )
        if s.adapt_tiled:
            info["adaptation, tiled"] = (
                "the same settings on episodes of model-input-size windows at native scale (then the shared crop), "
                "predicted in overlapping native-scale windows (Tiles inferer, default geometry)"
            )
    if s.auto:
        info["auto"] = (
            f"method chosen per (task, S) by leave-one-out Dice on {s.auto_folds} held-out support examples among "
            "UniverSeg, its ensemble, + adapt, the U-Net and adapt + U-Net, with the settings above"
            + (f", budget {s.auto_budget_s:g} s" if s.auto_budget_s else ", no time budget")
        )
    headline_support = default_headline_support(summary)
    md = markdown_report(summary, info, headline_support, result.timings)
    return {
        "per_target": write_csv(result.records, RECORD_FIELDS, out / "per_target.csv"),
        "summary": write_csv(summary, SUMMARY_FIELDS, out / "summary.csv"),
        "timings": write_csv(result.timings, TIMING_FIELDS, out / "timings.csv"),
        "markdown": atomic_write_text(out / "results.md", md),
    }
