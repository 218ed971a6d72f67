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
* ``dice_vs_support.png``, ``dice_drop_vs_severity.png``; ``ablation.md``.

Noise rule: a difference to the baseline *exceeds the seed spread* when the min-max ranges over seeds
of the two variants do not overlap (for speed: over timing rounds); otherwise it is *within noise*.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .config import AblationConfig, run_label

__all__ = [
    "ACCURACY_FIELDS",
    "PER_SEED_FIELDS",
    "PER_TASK_FIELDS",
    "ROBUSTNESS_FIELDS",
    "ROB_SEED_FIELDS",
    "SPEED_REPORT_FIELDS",
    "TASK_SUMMARY_FIELDS",
    "collect_accuracy",
    "collect_robustness",
    "compare",
    "markdown_report",
    "plot_dice_vs_support",
    "plot_drop_vs_severity",
    "spread",
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
_METHOD_LABELS = {"universeg": "one support set", "universeg_ensemble": "ensemble"}
WITHIN = "within noise"
EXCEEDS = "exceeds the seed spread"


# ---------------------------------------------------------------------- statistics
def spread(values: Sequence[float]) -> dict[str, float]:
    """``n_seeds, mean, std`` (sample std; 0 for one value), ``min, max`` of the finite values."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return {"n_seeds": 0, "mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    return {
        "n_seeds": len(v),
        "mean": statistics.fmean(v),
        "std": statistics.stdev(v) if len(v) > 1 else 0.0,
        "min": min(v),
        "max": max(v),
    }


def compare(baseline: Sequence[float], other: Sequence[float], unit: str = "seed") -> dict[str, Any]:
    """Difference of means and whether it exceeds the spread.

    Args:
        baseline: The baseline's values (one per seed, or per timing round).
        other: The other variant's values.
        unit: What the values are per (``"seed"`` or ``"round"``), for the verdict text.

    Returns:
        ``{"delta": mean(other) - mean(baseline), "exceeds": bool | None, "verdict": str}``;
        ``exceeds`` is ``True`` when the min-max ranges do not overlap, ``None`` with fewer than
        two values on a side (no spread to compare with).
    """
    b, o = spread(baseline), spread(other)
    delta = o["mean"] - b["mean"]
    if b["n_seeds"] < 2 or o["n_seeds"] < 2:
        return {"delta": delta, "exceeds": None, "verdict": f"n/a (fewer than 2 {unit}s)"}
    exceeds = o["min"] > b["max"] or o["max"] < b["min"]
    verdict = EXCEEDS.replace("seed", unit) if exceeds else WITHIN
    return {"delta": delta, "exceeds": exceeds, "verdict": verdict}


# ---------------------------------------------------------------------- collect
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


def _per_seed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["seed"], r["method"], int(r["requested_support"])), []).append(
            float(r["dice_mean"])
        )
    return [
        {"variant": v, "seed": s, "method": m, "requested_support": req, "n_tasks": len(d), "dice": statistics.fmean(d)}
        for (v, s, m, req), d in groups.items()
    ]


def _over_seeds(rows: list[dict[str, Any]], keys: Sequence[str], value: str, prefix: str) -> list[dict[str, Any]]:
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(float(r[value]))
    return [
        {**dict(zip(keys, k)), **{f"{prefix}_{n}": x for n, x in spread(v).items()}, "_values": v}
        for k, v in groups.items()
    ]


def _with_verdicts(
    rows: list[dict[str, Any]], keys: Sequence[str], baseline: str, unit: str = "seed"
) -> list[dict[str, Any]]:
    """Add ``delta_vs_baseline`` and ``verdict`` to rows aggregated over seeds (``_values`` per row)."""
    ref = {tuple(r[k] for k in keys): r["_values"] for r in rows if r["variant"] == baseline}
    for r in rows:
        base = ref.get(tuple(r[k] for k in keys))
        if r["variant"] == baseline:
            r["delta_vs_baseline"], r["verdict"] = 0.0, "baseline"
        elif base is None:
            r["delta_vs_baseline"], r["verdict"] = math.nan, "n/a (no baseline value)"
        else:
            c = compare(base, r["_values"], unit)
            r["delta_vs_baseline"], r["verdict"] = c["delta"], c["verdict"]
    return rows


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


def _read_speed(cfg: AblationConfig) -> tuple[list[dict[str, Any]], dict[tuple[str, str], list[float]]]:
    """``speed/speed.csv`` rows and the per-round values from ``speed/rounds.csv`` (empty without)."""
    folder = Path(cfg.out_dir) / "speed"
    if not (folder / "speed.csv").is_file():
        return [], {}
    with open(folder / "speed.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    rounds: dict[tuple[str, str], list[float]] = {}
    with open(folder / "rounds.csv", newline="") as fh:
        for r in csv.DictReader(fh):
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


# ---------------------------------------------------------------------- plots
def _ordered_sizes(rows: Iterable[dict[str, Any]]) -> list[int]:
    return sorted({int(r["requested_support"]) for r in rows})


def plot_dice_vs_support(acc: list[dict[str, Any]], labels: Sequence[str], path: Path) -> Path | None:
    """Mean Dice over seeds vs S per variant, min-max over seeds shaded; one panel per method."""
    from ..io.figures import pyplot, save_figure

    if not acc:
        return None
    plt = pyplot()
    methods = [m for m in _METHOD_LABELS if any(r["method"] == m for r in acc)]
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.4), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, method in zip(axes[0], methods):
        for label in labels:
            sel = sorted((r for r in acc if r["variant"] == label and r["method"] == method),
                         key=lambda r: int(r["requested_support"]))
            if not sel:
                continue
            xs = [int(r["requested_support"]) for r in sel]
            line, = ax.plot(xs, [r["dice_mean"] for r in sel], marker="o", markersize=3, label=label)
            ax.fill_between(xs, [r["dice_min"] for r in sel], [r["dice_max"] for r in sel], alpha=0.2,
                            color=line.get_color())
        sizes = _ordered_sizes(r for r in acc if r["method"] == method)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("support size S (requested)", fontsize=8)
        ax.set_title(f"{method} ({_METHOD_LABELS[method]})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("mean Dice over tasks", fontsize=8)
    axes[0, 0].legend(fontsize=7, frameon=False)
    fig.suptitle("Dice vs S (line: mean over seeds; band: min-max over seeds)", fontsize=9)
    save_figure(fig, path)
    return path


def plot_drop_vs_severity(rob: list[dict[str, Any]], labels: Sequence[str], path: Path) -> Path | None:
    """Dice drop vs severity per variant (mean over seeds, min-max shaded); a panel per perturbation x where."""
    from ..io.figures import pyplot, save_figure

    if not rob:
        return None
    plt = pyplot()
    panels = list(dict.fromkeys((r["perturbation"], r["where"]) for r in rob))
    ncol = min(4, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow + 0.6), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, (pert, where) in zip(axes.flat, panels):
        for label in labels:
            sel = sorted((r for r in rob if r["variant"] == label and r["perturbation"] == pert
                          and r["where"] == where), key=lambda r: r["severity"])
            if not sel:
                continue
            xs = [r["severity"] for r in sel]
            line, = ax.plot(xs, [r["drop_mean"] for r in sel], marker="o", markersize=3, label=label)
            ax.fill_between(xs, [r["drop_min"] for r in sel], [r["drop_max"] for r in sel], alpha=0.2,
                            color=line.get_color())
        ax.set_title(f"{pert} on {where}", fontsize=8)
        ax.set_xticks(sorted({r["severity"] for r in rob}))
        ax.axhline(0, color="grey", lw=0.5)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("Dice drop", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("severity", fontsize=8)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(5, len(names)), fontsize=7, frameon=False)
    fig.suptitle("Dice drop (clean minus perturbed) vs severity; band: min-max over seeds", fontsize=9)
    save_figure(fig, path)
    return path


# ---------------------------------------------------------------------- markdown
def _f(v: Any, digits: int = 3) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def _cell(r: dict[str, Any] | None, prefix: str, digits: int = 3) -> str:
    """``mean ± std (min–max)`` over seeds."""
    if r is None or not r[f"{prefix}_n_seeds"]:
        return "—"
    return (
        f"{_f(r[f'{prefix}_mean'], digits)} ± {_f(r[f'{prefix}_std'], digits)} "
        f"({_f(r[f'{prefix}_min'], digits)}–{_f(r[f'{prefix}_max'], digits)})"
    )


def _verdict_cell(r: dict[str, Any] | None, digits: int = 3) -> str:
    if r is None:
        return "—"
    if r["verdict"] == "baseline":
        return "baseline"
    return f"{float(r['delta_vs_baseline']):+.{digits}f}: {r['verdict']}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _setup_lines(cfg: AblationConfig) -> list[str]:
    from ..factory import create_model

    base = cfg.base_run_config()
    t, e, d, o = base.train, base.episodes, base.data, base.optim
    lines = ["## Setup", ""]
    rows = []
    for v in cfg.variants:
        m = create_model(v.name, **cfg.variant_overrides(v))
        n = sum(p.numel() for p in m.parameters())
        over = ", ".join(f"{k}={json.dumps(x)}" for k, x in cfg.variant_overrides(v).items()) or "—"
        rows.append([v.display_name + (" (baseline)" if v.display_name == cfg.baseline_label else ""), v.name,
                     over, f"{n:,}"])
    lines += _table(["variant", "registry name", "config overrides", "parameters"], rows)
    data_src = d.tasks_file or d.root or "synthetic only"
    lines += [
        "",
        f"- Training (shared by every variant): `{cfg.train.config}` with overrides "
        f"{', '.join(f'`{x}`' for x in cfg.train.overrides) or 'none'}; {t.steps} steps, batch {e.batch_size} "
        f"episodes, S in [{e.s_min}, {e.s_max}], AdamW lr {o.lr:g} (warm-up {o.warmup_steps}, cosine to "
        f"{o.min_lr_ratio:g}x); data {data_src} with synthetic tasks (p={d.synthetic_prob:g}); held out: "
        f"{', '.join(d.val_tasks)}.",
        f"- Seeds: {', '.join(map(str, cfg.seeds))} (each (variant, seed) trained from scratch).",
        f"- Evaluation: `{cfg.evaluate.weights}` weights; support sizes "
        f"{', '.join(map(str, cfg.evaluate.settings.support_sizes))}; up to {cfg.evaluate.settings.num_targets} "
        f"targets per task; ensemble of {cfg.evaluate.settings.ensemble} support sets for S <= "
        f"{cfg.evaluate.settings.ensemble_max_support}; protocol seed {cfg.evaluate.settings.seed}.",
        "- Spread: `mean ± std (min–max)` over seeds of the per-seed value (for accuracy: the mean Dice over "
        "tasks). A difference to the baseline **exceeds the seed spread** when the min–max ranges over seeds "
        "of the two variants do not overlap; otherwise it is **within noise**. With few seeds this is a weak "
        "test: a difference within noise is not shown to be absent.",
    ]
    return lines


def _accuracy_lines(cfg: AblationConfig, acc: list[dict[str, Any]], per_task: list[dict[str, Any]]) -> list[str]:
    lines = ["## Accuracy: Dice on held-out tasks", ""]
    if not acc:
        return lines + ["No evaluation results yet (`--stage evaluate`).", ""]
    labels = [label for label in cfg.labels if any(r["variant"] == label for r in acc)]
    by = {(r["variant"], r["method"], int(r["requested_support"])): r for r in acc}
    rank = {m: i for i, m in enumerate(_METHOD_LABELS)}
    keys = sorted({(r["method"], int(r["requested_support"])) for r in acc},
                  key=lambda k: (rank.get(k[0], len(rank)), k[1]))
    missing = [run_label(label, seed) for label in cfg.labels for seed in cfg.seeds
               if not any(r["variant"] == label and r["seed"] == seed for r in per_task)]
    tasks = sorted({r["task"] for r in per_task})
    capped: dict[int, set[str]] = {}
    for r in per_task:
        if int(r["support_size"]) < int(r["requested_support"]):
            capped.setdefault(int(r["requested_support"]), set()).add(r["task"])
    note = "".join(
        f" At S={s}, {len(names)} of the {len(tasks)} tasks have fewer support candidates and use all of them."
        for s, names in sorted(capped.items())
    )
    lines.append(f"Mean Dice over the {len(tasks)} held-out tasks ({', '.join(tasks)}), `mean ± std (min–max)` "
                 f"over seeds.{note} Per task and seed: `accuracy_per_task.csv`.")
    lines.append("")
    if missing:
        lines = [*lines, f"Not evaluated (yet): {', '.join(missing)}.", ""]
    lines += _table(["method", "S", *labels],
                    [[_METHOD_LABELS.get(m, m), str(s), *(_cell(by.get((v, m, s)), "dice") for v in labels)]
                     for m, s in keys])
    others = [v for v in labels if v != cfg.baseline_label]
    if cfg.baseline_label in labels and others:
        lines += ["", f"Difference to the baseline `{cfg.baseline_label}` (Δ mean Dice) and verdict:", ""]
        lines += _table(["method", "S", *others],
                        [[_METHOD_LABELS.get(m, m), str(s), *(_verdict_cell(by.get((v, m, s))) for v in others)]
                         for m, s in keys])
        lines.append("")
        for v in others:
            beyond = [(m, s, by[(v, m, s)]) for m, s in keys if by.get((v, m, s)) and
                      by[(v, m, s)]["verdict"] == EXCEEDS]
            if beyond:
                parts = "; ".join(f"S={s} {_METHOD_LABELS.get(m, m)}: {r['delta_vs_baseline']:+.3f}"
                                  for m, s, r in beyond)
                lines.append(f"- `{v}` vs `{cfg.baseline_label}`: the difference exceeds the seed spread at {parts}; "
                             f"every other accuracy difference is within noise.")
            else:
                lines.append(f"- `{v}` vs `{cfg.baseline_label}`: every accuracy difference is within noise "
                             f"(the seed ranges overlap at every S, with and without ensembling).")
    lines.append("")
    return lines


def _robustness_lines(cfg: AblationConfig, rob: list[dict[str, Any]], rob_avg: list[dict[str, Any]]) -> list[str]:
    lines = ["## Robustness: Dice drop under perturbations", ""]
    if not rob:
        return lines + ["No robustness results yet (`--stage robustness`).", ""]
    r = cfg.robustness
    perts = list(dict.fromkeys(x["perturbation"] for x in rob))
    sevs = sorted({int(x["severity"]) for x in rob})
    wheres = list(dict.fromkeys(x["where"] for x in rob))
    lines += [
        f"Robustness study ({', '.join(perts)}; severities {', '.join(map(str, sevs))}; where "
        f"{', '.join(wheres)}; S={r.support_size}, {r.num_targets} targets per task; eager). Dice drop = clean "
        "minus perturbed Dice of the same target (positive = worse), mean over tasks and targets, then "
        "`mean ± std (min–max)` over seeds:",
        "",
    ]
    labels = [label for label in cfg.labels if any(x["variant"] == label for x in rob)]
    by = {(x["variant"], x["perturbation"], x["severity"], x["where"]): x for x in rob}
    keys = list(dict.fromkeys((x["perturbation"], x["where"], x["severity"]) for x in
                              sorted(rob, key=lambda x: (x["perturbation"], x["where"], x["severity"]))))
    lines += _table(["perturbation", "where", "severity", *labels],
                    [[p, w, str(s), *(_cell(by.get((v, p, s, w)), "drop") for v in labels)] for p, w, s in keys])
    others = [v for v in labels if v != cfg.baseline_label]
    if cfg.baseline_label in labels and others:
        by_avg = {(x["variant"], x["perturbation"], x["where"]): x for x in rob_avg}
        pw = list(dict.fromkeys((p, w) for p, w, _ in keys))
        lines += ["", f"Per perturbation and input, averaged over severities: Dice drop and the difference to "
                  f"`{cfg.baseline_label}` (negative Δ = more robust than the baseline):", ""]
        lines += _table(["perturbation", "where", *(f"{v}" for v in labels), *(f"Δ {v}" for v in others)],
                        [[p, w, *(_cell(by_avg.get((v, p, w)), "drop") for v in labels),
                          *(_verdict_cell(by_avg.get((v, p, w))) for v in others)] for p, w in pw])
        lines.append("")
        for v in others:
            beyond = [(p, w, by_avg[(v, p, w)]) for p, w in pw if by_avg.get((v, p, w)) and
                      by_avg[(v, p, w)]["verdict"] == EXCEEDS]
            if beyond:
                parts = "; ".join(f"{p} on {w}: {x['delta_vs_baseline']:+.3f}" for p, w, x in beyond)
                lines.append(f"- `{v}` vs `{cfg.baseline_label}`: the Dice-drop difference exceeds the seed spread for "
                             f"{parts}; every other robustness difference is within noise.")
            else:
                lines.append(f"- `{v}` vs `{cfg.baseline_label}`: every robustness difference is within noise.")
    lines.append("")
    return lines


def _speed_lines(cfg: AblationConfig, speed: list[dict[str, Any]]) -> list[str]:
    lines = ["## Speed: ms per target", ""]
    if not speed:
        return lines + ["No speed results yet (`--stage speed`).", ""]
    from .runner import read_marker

    marker = read_marker(Path(cfg.out_dir) / "speed") or {}
    calls = marker.get("settings", {}).get("calls_per_round", cfg.speed.calls_per_round)
    first = speed[0]
    backends = list(dict.fromkeys(r["backend"] for r in speed))
    lines += [
        f"S={first['support_size']}, batch {first['batch_size']}, image {first['image_size']}; median over "
        f"{first['rounds']} interleaved rounds of {calls} call(s) (min–max over rounds), ratio to "
        f"`{cfg.baseline_label}` on the same backend"
        + ("" if len(backends) > 1 else "; eager only (no TVM level configured, or TVM not installed)") + ":",
        "",
    ]
    by = {(r["variant"], r["backend"]): r for r in speed}
    header = ["variant"]
    for b in backends:
        header += [f"{b} ms", f"{b} / baseline"]
    if len(backends) > 1:
        header += [f"{b} / eager" for b in backends if b != "eager"]
    rows = []
    for v in cfg.labels:
        row = [v]
        for b in backends:
            r = by.get((v, b))
            row += ["—", "—"] if r is None else [
                f"{_f(r['ms_median'], 2)} ({_f(r['ms_min'], 2)}–{_f(r['ms_max'], 2)})",
                f"{_f(r['ratio_to_baseline'], 2)}"
                + ("" if r["verdict"] in ("baseline", "n/a") else f" ({r['verdict']})"),
            ]
        if len(backends) > 1:
            row += [_f(by[(v, b)]["ratio_to_eager"], 2) if (v, b) in by else "—" for b in backends if b != "eager"]
        rows.append(row)
    lines += _table(header, rows)
    lines.append("")
    return lines


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _timing_lines(cfg: AblationConfig, command: str | None) -> list[str]:
    from .runner import read_marker

    path = Path(cfg.out_dir) / "timings.json"
    timings = json.loads(path.read_text()) if path.is_file() else {}
    lines = ["## How this was produced", ""]
    commands = list(
        dict.fromkeys(e["command"] for entries in timings.values() for e in entries if e.get("command"))
    )
    if not commands and command:
        commands = [command]
    if commands:
        lines.append("Command" + ("s" if len(commands) > 1 else "") + " (run from the repository root; rerunning "
                     "resumes and skips finished work):")
        lines.append("")
        lines += [f"    {c}" for c in commands]
        lines.append("")
    machines = list(dict.fromkeys(
        json.dumps(e["machine"], sort_keys=True) for entries in timings.values() for e in entries if e.get("machine")
    ))
    for m in machines:
        m = json.loads(m)
        lines.append(f"- Machine: {m['cpu']}, {m['cpu_count']} CPU core(s), {m['torch_threads']} torch thread(s), "
                     f"GPU: {m['gpu'] or 'none'}; torch {m['torch']}, Python {m['python']}, {m['os']}.")
    train_s = []
    for label in cfg.labels:
        for seed in cfg.seeds:
            mk = read_marker(cfg.run_dir(label, seed))
            if mk and mk.get("elapsed_s") is not None:
                train_s.append(float(mk["elapsed_s"]))
    total = sum(e["wall_s"] for entries in timings.values() for e in entries)
    if train_s:
        lines.append(f"- Training: {_duration(sum(train_s))} over {len(train_s)} run(s) (sum of the runs' training "
                     f"loop time, resumes included; {_duration(statistics.fmean(train_s))} per run).")
    for stage in ("train", "evaluate", "robustness", "speed"):
        entries = timings.get(stage, [])
        if entries:
            lines.append(f"- Stage `{stage}`: {_duration(sum(e['wall_s'] for e in entries))} wall time over "
                         f"{len(entries)} invocation(s) that did work.")
    if total:
        lines.append(f"- Total wall time of the stages: {_duration(total)}.")
    lines.append("")
    return lines


def markdown_report(
    cfg: AblationConfig,
    per_task: list[dict[str, Any]],
    acc: list[dict[str, Any]],
    rob: list[dict[str, Any]],
    rob_avg: list[dict[str, Any]],
    speed: list[dict[str, Any]],
    images: dict[str, str],
    command: str | None = None,
) -> str:
    """The report text.

    Args:
        cfg: The ablation.
        per_task: Accuracy rows per (variant, seed, task, method, S) (``accuracy_per_task.csv``).
        acc: Accuracy rows aggregated over seeds (``accuracy.csv``).
        rob: Robustness rows aggregated over seeds (``robustness.csv``).
        rob_avg: The same averaged over severities (per seed first).
        speed: Speed rows (``speed.csv``).
        images: ``{"dice_vs_support": link, "dice_drop_vs_severity": link}`` of the plots to embed.
        command: Command line of this invocation.
    """
    out = [f"# {cfg.report.title}: {cfg.name}", ""]
    out += [
        f"Variants {', '.join(f'`{v}`' for v in cfg.labels)} trained from scratch under one recipe, each with "
        f"seeds {', '.join(map(str, cfg.seeds))}, compared with the baseline `{cfg.baseline_label}` on accuracy, "
        "robustness and speed.",
        "",
    ]
    out += _setup_lines(cfg) + [""]
    out += _accuracy_lines(cfg, acc, per_task)
    if "dice_vs_support" in images:
        out += [f"![Dice vs S per variant]({images['dice_vs_support']})", ""]
    out += _robustness_lines(cfg, rob, rob_avg)
    if "dice_drop_vs_severity" in images:
        out += [f"![Dice drop vs severity per variant]({images['dice_drop_vs_severity']})", ""]
    out += _speed_lines(cfg, speed)
    out += _timing_lines(cfg, command)
    out += [
        "## Files",
        "",
        f"Under `{cfg.out_dir}`: `accuracy_per_task.csv`, `accuracy_per_seed.csv`, "
        "`accuracy_task_summary.csv`, `accuracy.csv`, `robustness_per_seed.csv`, `robustness.csv`, `speed.csv`, "
        "the plots, `eval/<variant>/seed<k>/` (per-target results) and `robustness/` (the study's own report).",
        "",
    ]
    return "\n".join(out)


def _strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "_values"} for r in rows]


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
    from ..evaluation.report import write_csv
    from ..io.atomic import atomic_write_text

    out = Path(out_dir or cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    base = cfg.baseline_label

    per_task = collect_accuracy(cfg)
    per_seed = _per_seed(per_task)
    task_summary = _over_seeds(per_task, ["variant", "task", "method", "requested_support"], "dice_mean", "dice")
    acc = _with_verdicts(_over_seeds(per_seed, ["variant", "method", "requested_support"], "dice", "dice"),
                         ["method", "requested_support"], base)
    rob_seed = collect_robustness(cfg)
    rob = _with_verdicts(
        _over_seeds(rob_seed, ["variant", "perturbation", "severity", "where"], "dice_drop", "drop"),
        ["perturbation", "severity", "where"], base,
    )
    sev_avg: dict[tuple, list[float]] = {}
    for r in rob_seed:
        sev_avg.setdefault((r["variant"], r["seed"], r["perturbation"], r["where"]), []).append(r["dice_drop"])
    rob_avg_seed = [{"variant": v, "seed": s, "perturbation": p, "where": w, "dice_drop": statistics.fmean(d)}
                    for (v, s, p, w), d in sev_avg.items()]
    rob_avg = _with_verdicts(_over_seeds(rob_avg_seed, ["variant", "perturbation", "where"], "dice_drop", "drop"),
                             ["perturbation", "where"], base)
    speed, _ = _read_speed(cfg)

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

    acc_s, rob_s, rob_avg_s = _strip(acc), _strip(rob), _strip(rob_avg)
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
