"""Reading what the ablation stages wrote: evaluation summaries, robustness results, speed rounds."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from ..io.tables import read_csv_rows
from .config import AblationConfig, run_label
from .stats import compare

__all__ = [
    "METHOD_LABELS",
    "accuracy_per_seed",
    "collect_accuracy",
    "collect_robustness",
    "read_speed",
    "robustness_over_severities",
]

METHOD_LABELS = {"universeg": "one support set", "universeg_ensemble": "ensemble"}


def collect_accuracy(cfg: AblationConfig) -> list[dict[str, Any]]:
    """Per (variant, seed, task, method, S) rows from every ``eval/<variant>/seed<k>/summary.csv``."""
    from ..evaluation.report import read_csv

    rows = []
    for label in cfg.labels:
        for seed in cfg.seeds:
            path = cfg.eval_dir(label, seed) / "summary.csv"
            if not path.is_file():
                continue
            for r in read_csv(path):
                rows.append({"variant": label, "seed": seed, **r})
    return rows


def accuracy_per_seed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean Dice over tasks per (variant, seed, method, S), from :func:`collect_accuracy` rows."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["seed"], r["method"], int(r["requested_support"])), []).append(
            float(r["dice_mean"])
        )
    return [
        {"variant": v, "seed": s, "method": m, "requested_support": req, "n_tasks": len(d), "dice": statistics.fmean(d)}
        for (v, s, m, req), d in groups.items()
    ]


def collect_robustness(cfg: AblationConfig) -> list[dict[str, Any]]:
    """Per (variant, seed, perturbation, severity, where) mean Dice and Dice drop over tasks and targets
    (eager backend), from ``robustness/results.csv``; empty without one."""
    from ..robustness import load_results

    path = Path(cfg.out_dir) / "robustness" / "results.csv"
    if not path.is_file():
        return []
    names = {run_label(label, seed): (label, seed) for label in cfg.labels for seed in cfg.seeds}
    groups: dict[tuple, list[tuple[float, float]]] = {}
    for r in load_results(path):
        if r["backend"] != "eager" or r["model"] not in names or r["perturbation"] == "none":
            continue
        label, seed = names[r["model"]]
        groups.setdefault((label, seed, r["perturbation"], r["severity"], r["where"]), []).append(
            (r["dice"], r["dice_drop"])
        )
    out = []
    for (label, seed, pert, sev, where), vals in groups.items():
        drops = [d for _, d in vals if math.isfinite(d)]
        out.append(
            {
                "variant": label, "seed": seed, "perturbation": pert, "severity": sev, "where": where,
                "n_rows": len(vals), "dice": statistics.fmean(x for x, _ in vals),
                "dice_drop": statistics.fmean(drops) if drops else math.nan,
            }
        )
    return out


def robustness_over_severities(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean Dice drop over severities per (variant, seed, perturbation, where), from
    :func:`collect_robustness` rows."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["seed"], r["perturbation"], r["where"]), []).append(r["dice_drop"])
    return [
        {"variant": v, "seed": s, "perturbation": p, "where": w, "dice_drop": statistics.fmean(d)}
        for (v, s, p, w), d in groups.items()
    ]


def read_speed(cfg: AblationConfig) -> tuple[list[dict[str, Any]], dict[tuple[str, str], list[float]]]:
    """``speed/speed.csv`` rows and the per-round values from ``speed/rounds.csv`` (empty without)."""
    folder = Path(cfg.out_dir) / "speed"
    if not (folder / "speed.csv").is_file():
        return [], {}
    summary: list[dict[str, Any]] = list(read_csv_rows(folder / "speed.csv"))
    rounds: dict[tuple[str, str], list[float]] = {}
    for r in read_csv_rows(folder / "rounds.csv"):
        rounds.setdefault((r["variant"], r["backend"]), []).append(float(r["ms_per_target"]))
    for r in summary:
        for k in ("ms_median", "ms_min", "ms_max", "ratio_to_baseline", "ratio_to_eager"):
            r[k] = float(r[k])
        if r["variant"] == cfg.baseline_label:
            r["verdict"] = "baseline"
        else:
            base = rounds.get((cfg.baseline_label, r["backend"]))
            r["verdict"] = compare(base, rounds[(r["variant"], r["backend"])], "round")["verdict"] if base else "n/a"
    return summary, rounds
