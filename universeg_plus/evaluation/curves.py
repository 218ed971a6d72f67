"""Learning curves: mean Dice and wall time against the support size S, one line per method.

Written by ``universeg-plus evaluate`` when it scores more than one S (``learning_curves.md`` and
``learning_curves.png`` beside ``results.md``). Every method of a row saw the same seeded support
sets and targets (:func:`~universeg_plus.evaluation.protocol.make_episodes`). The head-to-head count
compares each method that uses the in-context prior with the U-Net given equal wall time where it
was run (``unet_equal_time``), else with the plain U-Net.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write_text
from ..io.figures import pyplot, save_figure
from .report import _LABELS, _methods

__all__ = ["PRIOR_METHODS", "curve_points", "curves_markdown", "plot_curves", "write_curves"]

#: Methods that use the in-context prior (the issue's "ahead of the U-Net" count is about these).
PRIOR_METHODS = ("universeg", "universeg_colour_fisher", "universeg_colour_auto", "universeg_ensemble",
                 "universeg_adapt", "universeg_adapt_mix", "universeg_adapt_tiled", "unet_prior",
                 "adapt_unet", "auto")


def _mean(v: Sequence[float]) -> float:
    return sum(v) / len(v) if v else math.nan


def curve_points(
    summary: Sequence[dict[str, Any]], timings: Sequence[dict[str, Any]] = ()
) -> dict[str, dict[int, dict[str, float]]]:
    """``{method: {S: {"dice", "wall_s", "tasks"}}}``: means over the tasks scored at that requested S."""
    wall: dict[tuple[str, int], list[float]] = {}
    for r in timings:
        wall.setdefault((r["method"], int(r["requested_support"])), []).append(float(r["wall_s"]))
    dice: dict[tuple[str, int], list[float]] = {}
    for r in summary:
        dice.setdefault((r["method"], int(r["requested_support"])), []).append(float(r["dice_mean"]))
    out: dict[str, dict[int, dict[str, float]]] = {}
    for (m, s), v in sorted(dice.items(), key=lambda kv: kv[0][1]):
        out.setdefault(m, {})[s] = {"dice": _mean(v), "wall_s": _mean(wall.get((m, s), [])), "tasks": len(v)}
    return {m: out[m] for m in _methods(summary)}


def _wins(summary: Sequence[dict[str, Any]], s: int) -> tuple[str, dict[str, tuple[int, int]]]:
    """The reference U-Net at ``s`` and, per prior method, (tasks ahead of it, tasks compared)."""
    by = {(r["task"], r["method"]): float(r["dice_mean"]) for r in summary if int(r["requested_support"]) == s}
    methods = {m for _, m in by}
    ref = "unet_equal_time" if "unet_equal_time" in methods else "unet"
    out = {}
    for m in PRIOR_METHODS:
        pairs = [t for (t, mm) in by if mm == m and (t, ref) in by]
        if pairs:
            out[m] = (sum(by[(t, m)] > by[(t, ref)] for t in pairs), len(pairs))
    return ref, out


def curves_markdown(summary: Sequence[dict[str, Any]], timings: Sequence[dict[str, Any]] = ()) -> str:
    """Mean Dice (wall seconds) per method and S, then the head-to-head counts against the U-Net."""
    pts = curve_points(summary, timings)
    if not pts:
        return "_no results_\n"
    sizes = sorted({s for v in pts.values() for s in v})
    lines = ["| method | " + " | ".join(f"S={s}" for s in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for m, by_s in pts.items():
        cells = []
        for s in sizes:
            p = by_s.get(s)
            cells.append("—" if p is None else f"{p['dice']:.3f} ({p['wall_s']:.0f} s)" if not math.isnan(p["wall_s"])
                         else f"{p['dice']:.3f}")
        lines.append(f"| {_LABELS.get(m, m)} | " + " | ".join(cells) + " |")
    lines += ["", "Mean Dice over tasks (mean wall time per task and S: support set, training and prediction of "
              "its targets). Tasks ahead of the U-Net:", ""]
    for s in sizes:
        ref, wins = _wins(summary, s)
        if wins:
            text = ", ".join(f"{_LABELS.get(m, m)} {k}/{n}" for m, (k, n) in wins.items())
            lines.append(f"- S={s} (against {_LABELS.get(ref, ref)}): {text}")
    return "\n".join(lines) + "\n"


def plot_curves(
    summary: Sequence[dict[str, Any]], timings: Sequence[dict[str, Any]], path: str | os.PathLike, title: str = ""
) -> Path:
    """Two panels: mean Dice vs S and mean wall time vs S (log-scaled S and time), one line per method."""
    plt = pyplot()
    pts = curve_points(summary, timings)
    fig, (ax_d, ax_t) = plt.subplots(1, 2, figsize=(11, 4.8))
    for m, by_s in pts.items():
        s = sorted(by_s)
        style = "--" if m.startswith("unet") else "-"
        ax_d.plot(s, [by_s[k]["dice"] for k in s], style, marker="o", label=_LABELS.get(m, m))
        if not all(math.isnan(by_s[k]["wall_s"]) for k in s):
            ax_t.plot(s, [by_s[k]["wall_s"] for k in s], style, marker="o", label=_LABELS.get(m, m))
    for ax in (ax_d, ax_t):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("support size S")
        ax.grid(alpha=0.3)
    sizes = sorted({s for v in pts.values() for s in v})
    for ax in (ax_d, ax_t):
        ax.set_xticks(sizes, [str(s) for s in sizes])
    ax_d.set_ylabel("mean Dice over tasks")
    ax_t.set_ylabel("wall time per task and S (s)")
    ax_t.set_yscale("log")
    handles, labels = ax_d.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return save_figure(fig, path, dpi=100)


def write_curves(summary: Sequence[dict[str, Any]], timings: Sequence[dict[str, Any]], out_dir: str | os.PathLike,
                 title: str = "") -> dict[str, Path]:
    """``learning_curves.md`` and ``learning_curves.png`` in ``out_dir``."""
    out = Path(out_dir)
    md = "# Learning curves\n\n" + (f"{title}\n\n" if title else "") + curves_markdown(summary, timings)
    return {
        "curves_markdown": atomic_write_text(out / "learning_curves.md", md),
        "curves_plot": plot_curves(summary, timings, out / "learning_curves.png", title),
    }
