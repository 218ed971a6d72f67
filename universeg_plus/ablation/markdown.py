"""The ablation report's text: setup, accuracy, robustness, speed and how it was produced, in markdown."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from ..io.tables import markdown_table
from .collect import METHOD_LABELS
from .config import AblationConfig, run_label
from .records import read_marker, read_timings
from .stats import EXCEEDS

__all__ = ["markdown_report"]


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
    lines += markdown_table(["variant", "registry name", "config overrides", "parameters"], rows)
    data_src = d.tasks_file or d.root or "synthetic only"
    lines += [
        "",
        f"- Training (shared by every variant): `{cfg.train.config}` with overrides "
        f"{', '.join(f'`{x}`' for x in cfg.train.overrides) or 'none'}; {t.steps} steps, batch {e.batch_size} "
        f"episodes, S in [{e.s_min}, {e.s_max}], AdamW lr {o.lr:g} (warm-up {o.warmup_steps}, cosine to "
        f"{o.min_lr_ratio:g}x); data {data_src} with synthetic tasks (p={d.synthetic_prob:g}); validation: "
        f"{', '.join(d.val_tasks)}; held out: {', '.join(d.held_out)}.",
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
    rank = {m: i for i, m in enumerate(METHOD_LABELS)}
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
    lines += markdown_table(["method", "S", *labels],
                    [[METHOD_LABELS.get(m, m), str(s), *(_cell(by.get((v, m, s)), "dice") for v in labels)]
                     for m, s in keys])
    others = [v for v in labels if v != cfg.baseline_label]
    if cfg.baseline_label in labels and others:
        lines += ["", f"Difference to the baseline `{cfg.baseline_label}` (Δ mean Dice) and verdict:", ""]
        lines += markdown_table(["method", "S", *others],
                        [[METHOD_LABELS.get(m, m), str(s), *(_verdict_cell(by.get((v, m, s))) for v in others)]
                         for m, s in keys])
        lines.append("")
        for v in others:
            beyond = [(m, s, by[(v, m, s)]) for m, s in keys if by.get((v, m, s)) and
                      by[(v, m, s)]["verdict"] == EXCEEDS]
            if beyond:
                parts = "; ".join(f"S={s} {METHOD_LABELS.get(m, m)}: {r['delta_vs_baseline']:+.3f}"
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
    lines += markdown_table(["perturbation", "where", "severity", *labels],
                    [[p, w, str(s), *(_cell(by.get((v, p, s, w)), "drop") for v in labels)] for p, w, s in keys])
    others = [v for v in labels if v != cfg.baseline_label]
    if cfg.baseline_label in labels and others:
        by_avg = {(x["variant"], x["perturbation"], x["where"]): x for x in rob_avg}
        pw = list(dict.fromkeys((p, w) for p, w, _ in keys))
        lines += ["", f"Per perturbation and input, averaged over severities: Dice drop and the difference to "
                  f"`{cfg.baseline_label}` (negative Δ = more robust than the baseline):", ""]
        lines += markdown_table(["perturbation", "where", *(f"{v}" for v in labels), *(f"Δ {v}" for v in others)],
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
    lines += markdown_table(header, rows)
    lines.append("")
    return lines


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _timing_lines(cfg: AblationConfig, command: str | None) -> list[str]:
    timings = read_timings(cfg)
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
