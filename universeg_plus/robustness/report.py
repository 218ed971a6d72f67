"""The study report: PNG plots and a markdown summary computed from the results CSV.

* ``dice_vs_severity_<where>.png``: mean Dice against severity (0 = clean), one panel per
  perturbation, one line per model variant / backend.
* ``dice_drop_heatmap.png``: mean Dice drop (clean minus perturbed, averaged over severities,
  tasks and targets) per perturbation x where, one panel per variant / backend.
* ``summary.md``: the research question answered in numbers.

The *Dice drop* of a row is the clean Dice of the same (task, model, backend, target) minus its Dice.
"""

from __future__ import annotations

import logging
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..io.atomic import atomic_write_text
from ..io.figures import label_panels, panel_figure, pyplot, save_figure
from ..io.tables import markdown_table
from ..perturb import WHERE
from .schema import COLUMNS, iter_rows

__all__ = ["load_results", "plot_dice_drop_heatmap", "plot_dice_vs_severity", "summarize", "write_report"]

log = logging.getLogger(__name__)

_FLOATS = ("dice", "iou", "sensitivity", "specificity", "hd95", "inference_ms", "agreement_dice", "max_abs_dprob",
           "saliency_rmse")


def _float(text: str) -> float:
    return float(text) if text not in ("", None) else math.nan


def load_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a results CSV with numbers parsed (empty cells -> NaN) and ``dice_drop`` added.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a CSV without the study's columns.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} does not exist")
    rows = []
    for raw in iter_rows(path):
        if set(COLUMNS) - set(raw):
            raise ValueError(f"{path} is not a study results CSV: missing columns {sorted(set(COLUMNS) - set(raw))}")
        row: dict[str, Any] = dict(raw)
        row["severity"] = int(raw["severity"])
        for k in _FLOATS:
            row[k] = _float(raw[k])
        rows.append(row)
    clean = {(r["task"], r["model"], r["backend"], r["target"]): r["dice"] for r in rows if r["perturbation"] == "none"}
    for r in rows:
        r["dice_drop"] = clean.get((r["task"], r["model"], r["backend"], r["target"]), math.nan) - r["dice"]
    return rows


def _mean(values: Iterable[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def _group(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any], value: str) -> dict[Any, float]:
    acc: dict[Any, list[float]] = defaultdict(list)
    for r in rows:
        acc[key(r)].append(r[value])
    return {k: _mean(v) for k, v in acc.items()}


def _series(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r["model"], r["backend"]) for r in rows))


def _ordered(rows: list[dict[str, Any]], col: str) -> list[str]:
    values = [v for v in dict.fromkeys(r[col] for r in rows) if v != "none"]
    if col == "where":
        rank = {w: i for i, w in enumerate(WHERE)}
        values.sort(key=lambda w: rank.get(w, len(rank)))
    return values


def plot_dice_vs_severity(rows: list[dict[str, Any]], out_dir: str | os.PathLike) -> list[Path]:
    """One PNG per ``where``: Dice vs severity per perturbation, a line per variant/backend."""
    out_dir = Path(out_dir)
    paths = []
    perts = _ordered(rows, "perturbation")
    series = _series(rows)
    clean = _group([r for r in rows if r["perturbation"] == "none"], lambda r: (r["model"], r["backend"]), "dice")
    mean = _group(rows, lambda r: (r["model"], r["backend"], r["perturbation"], r["where"], r["severity"]), "dice")
    for where in _ordered(rows, "where"):
        shown = [p for p in perts if any((m, b, p, where, s) in mean for m, b in series for s in range(1, 6))]
        if not shown:
            continue
        fig, axes = panel_figure(len(shown), 5, (2.6, 2.3), extra_height=0.8, min_width=6.0)
        for ax, pert in zip(axes.flat, shown):
            for m, b in series:
                xs, ys = [0], [clean.get((m, b), math.nan)]
                for s in range(1, 6):
                    if (m, b, pert, where, s) in mean:
                        xs.append(s)
                        ys.append(mean[(m, b, pert, where, s)])
                ax.plot(xs, ys, marker="o", markersize=3, label=f"{m} / {b}")
            ax.set_title(pert, fontsize=9)
            ax.set_xticks(range(0, 6))
            ax.tick_params(labelsize=7)
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
        label_panels(fig, axes, xlabel="severity (0 = clean)", ylabel="mean Dice", legend_cols=4, legend_size=8,
                     title=f"Dice vs severity, perturbing: {where}", title_size=10)
        paths.append(save_figure(fig, out_dir / f"dice_vs_severity_{where}.png"))
    return paths


def plot_dice_drop_heatmap(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path | None:
    """Mean Dice drop per perturbation x where, one panel per variant/backend (``None`` without perturbed rows)."""
    plt = pyplot()
    perts, wheres, series = _ordered(rows, "perturbation"), _ordered(rows, "where"), _series(rows)
    if not perts:
        return None
    drop = _group(rows, lambda r: (r["model"], r["backend"], r["perturbation"], r["where"]), "dice_drop")
    fig, axes = plt.subplots(
        1, len(series), figsize=(1.0 + (1.4 + 0.8 * len(wheres)) * len(series), 1.4 + 0.36 * len(perts)),
        squeeze=False, layout="constrained",
    )
    finite = [v for v in drop.values() if not math.isnan(v)]
    vmax = max(0.05, max((abs(v) for v in finite), default=0.05))
    for ax, (m, b) in zip(axes[0], series):
        grid = np.array([[drop.get((m, b, p, w), math.nan) for w in wheres] for p in perts])
        im = ax.imshow(grid, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(wheres)), [w.replace("_", "\n") for w in wheres], fontsize=7)
        ax.set_yticks(range(len(perts)), perts, fontsize=7)
        ax.set_title(f"{m} / {b}", fontsize=8)
        for i in range(len(perts)):
            for k in range(len(wheres)):
                if not math.isnan(grid[i, k]):
                    ax.text(k, i, f"{grid[i, k]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="mean Dice drop")
    path = save_figure(fig, Path(path))
    return path


def _fmt(v: float, digits: int = 3) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.{digits}f}"


def _reference_backend(rows: list[dict[str, Any]]) -> str:
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    return "eager" if "eager" in backends else backends[0]


def summarize(rows: list[dict[str, Any]]) -> str:
    """The markdown summary: clean quality, which corruptions and which inputs hurt most, variant
    ranking, compiled-vs-eager agreement and robustness, saliency shift."""
    if not rows:
        return "# Robustness study\n\nNo results yet.\n"
    ref_b = _reference_backend(rows)
    models = list(dict.fromkeys(r["model"] for r in rows))
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    perts, wheres = _ordered(rows, "perturbation"), _ordered(rows, "where")
    sevs = sorted({r["severity"] for r in rows if r["severity"] > 0})
    perturbed = [r for r in rows if r["perturbation"] != "none"]
    n_targets = len({(r["task"], r["target"]) for r in rows})
    out = [
        "# Robustness study",
        "",
        f"{len(rows)} rows: {len(tasks)} task(s) ({', '.join(tasks)}), {n_targets} target(s) in all; "
        f"models {', '.join(models)}; backends {', '.join(backends)}; {len(perts)} perturbation(s) at "
        f"severities {', '.join(map(str, sevs)) or '-'}; where {', '.join(wheres) or '-'}. "
        "Dice drop = clean Dice minus perturbed Dice of the same target (positive = worse).",
        "",
        "## Clean quality",
        "",
    ]
    clean_rows = [r for r in rows if r["perturbation"] == "none"]
    clean_table = []
    for m, b in _series(rows):
        sel = [r for r in clean_rows if r["model"] == m and r["backend"] == b]
        hd = [r["hd95"] for r in sel if math.isfinite(r["hd95"])]
        ms = [r["inference_ms"] for r in sel if not math.isnan(r["inference_ms"])]
        clean_table.append([
            m, b, _fmt(_mean(r["dice"] for r in sel)), _fmt(_mean(r["iou"] for r in sel)),
            _fmt(float(np.median(hd)) if hd else math.nan, 1), _fmt(float(np.median(ms)) if ms else math.nan, 1),
        ])
    out += markdown_table(
        ["model", "backend", "mean Dice", "mean IoU", "median HD95 (px)", "median inference ms"], clean_table, "llrrrr"
    )
    if perturbed:
        top = max(sevs)
        out += ["", f"## Which corruption hurts most (backend {ref_b}, severity {top}, mean Dice drop)", ""]
        drop_top = _group([r for r in perturbed if r["severity"] == top and r["backend"] == ref_b],
                          lambda r: (r["model"], r["perturbation"], r["where"]), "dice_drop")
        worst_table = []
        for p in perts:
            for w in wheres:
                vals = [drop_top.get((m, p, w), math.nan) for m in models]
                if not all(math.isnan(v) for v in vals):
                    worst_table.append([p, w, *(_fmt(v) for v in vals)])
        out += markdown_table(["perturbation", "where", *models], worst_table, "ll" + "r" * len(models))
        worst = sorted(((v, k) for k, v in drop_top.items() if not math.isnan(v)), reverse=True)[:3]
        if worst:
            out += ["", "Largest drops: " + "; ".join(f"{p} on {w} ({m}): {v:.3f}" for v, (m, p, w) in worst) + "."]

        out += ["", f"## Target vs support (backend {ref_b}, mean Dice drop over all perturbations and severities)", ""]
        by_where = _group([r for r in perturbed if r["backend"] == ref_b], lambda r: (r["model"], r["where"]), "dice_drop")
        out += markdown_table(["model", *wheres],
                              [[m, *(_fmt(by_where.get((m, w), math.nan)) for w in wheres)] for m in models],
                              "l" + "r" * len(wheres))

        out += ["", f"## Variants (backend {ref_b})", ""]
        by_model = _group([r for r in perturbed if r["backend"] == ref_b], lambda r: r["model"], "dice_drop")
        ranked = sorted((v, m) for m, v in by_model.items() if not math.isnan(v))
        for v, m in ranked:
            out.append(f"- {m}: mean Dice drop {v:.3f} over {len(perts)} perturbation(s)")
        if len(ranked) > 1:
            out.append(f"\nMost robust: {ranked[0][1]} ({ranked[0][0]:.3f}); least robust: {ranked[-1][1]} "
                       f"({ranked[-1][0]:.3f}).")

    compiled = [b for b in backends if b != "eager"]
    if compiled and "eager" in backends:
        out += ["", "## Compilation (each backend against eager on the same inputs)", ""]
        compile_table = []
        eager_drop = {(r["task"], r["model"], r["target"], r["perturbation"], r["severity"], r["where"]): r["dice_drop"]
                      for r in perturbed if r["backend"] == "eager"}
        worst_change = 0.0
        for m in models:
            for b in compiled:
                sel = [r for r in rows if r["model"] == m and r["backend"] == b]
                if not sel:
                    continue
                agree = [r["agreement_dice"] for r in sel if not math.isnan(r["agreement_dice"])]
                dprob = [r["max_abs_dprob"] for r in sel if not math.isnan(r["max_abs_dprob"])]
                change = [abs(r["dice_drop"] - eager_drop[k]) for r in sel if r["perturbation"] != "none"
                          for k in [(r["task"], r["model"], r["target"], r["perturbation"], r["severity"], r["where"])]
                          if k in eager_drop and not math.isnan(r["dice_drop"]) and not math.isnan(eager_drop[k])]
                med_b = float(np.median([r["inference_ms"] for r in sel]))
                med_e = float(np.median([r["inference_ms"] for r in rows if r["model"] == m and r["backend"] == "eager"]))
                worst_change = max([worst_change, *change])
                compile_table.append([
                    m, b, _fmt(_mean(agree)), _fmt(min(agree) if agree else math.nan),
                    f"{max(dprob):.3g}" if dprob else "n/a", _fmt(_mean(change)),
                    _fmt(max(change) if change else math.nan), _fmt(med_e / med_b if med_b > 0 else math.nan, 2),
                ])
        out += markdown_table(
            ["model", "backend", "mean agreement Dice", "min agreement Dice", "max abs delta prob",
             "mean abs change of Dice drop", "max abs change of Dice drop", "eager ms / backend ms (median)"],
            compile_table, "llrrrrrr",
        )
        out += ["", f"Compilation changes a target's Dice drop by at most {worst_change:.3f} across the grid."]
    elif not compiled:
        out += ["", "## Compilation", "", "Only the eager backend ran (no TVM backend in the grid or TVM unavailable)."]

    sal = [r for r in perturbed if r["backend"] == ref_b and not math.isnan(r["saliency_rmse"])]
    if sal:
        top = max(sevs)
        out += ["", f"## Saliency shift (RMSE between clean and perturbed target saliency, severity {top})", ""]
        by_p = _group([r for r in sal if r["severity"] == top], lambda r: (r["perturbation"], r["where"]), "saliency_rmse")
        out += markdown_table(["perturbation", "where", "saliency RMSE"],
                              [[p, w, _fmt(v)] for (p, w), v in
                               sorted(by_p.items(), key=lambda kv: -kv[1] if not math.isnan(kv[1]) else 0)], "llr")
        pairs = np.array([(r["saliency_rmse"], r["dice_drop"]) for r in sal if not math.isnan(r["dice_drop"])])
        if len(pairs) > 2 and pairs[:, 0].std() > 0 and pairs[:, 1].std() > 0:
            corr = float(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1])
            out += ["", f"Pearson correlation between saliency RMSE and Dice drop over {len(pairs)} rows: {corr:.2f}."]
    return "\n".join(out) + "\n"


def write_report(csv_path: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write the plots and ``summary.md`` for a results CSV.

    Returns:
        ``{"summary": Path, "severity_plots": [Path, ...], "heatmap": Path | None}``.
    """
    rows = load_results(csv_path)
    out = Path(out_dir) if out_dir is not None else Path(csv_path).parent
    out.mkdir(parents=True, exist_ok=True)
    summary = atomic_write_text(out / "summary.md", summarize(rows))
    plots = plot_dice_vs_severity(rows, out)
    heat = plot_dice_drop_heatmap(rows, out / "dice_drop_heatmap.png")
    log.info("report written to %s", out)
    return {"summary": summary, "severity_plots": plots, "heatmap": heat}
