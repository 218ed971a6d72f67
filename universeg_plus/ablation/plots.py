"""The ablation's plots: Dice vs support size, and Dice drop vs severity, per variant over seeds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..io.figures import label_panels, panel_figure, save_figure
from .collect import METHOD_LABELS

__all__ = ["plot_dice_vs_support", "plot_drop_vs_severity"]


def _mean_band(ax: Any, xs: list[int], rows: list[dict[str, Any]], prefix: str, label: str) -> None:
    """The mean over seeds as a line, the min-max over seeds as a band of the same colour."""
    line, = ax.plot(xs, [r[f"{prefix}_mean"] for r in rows], marker="o", markersize=3, label=label)
    ax.fill_between(xs, [r[f"{prefix}_min"] for r in rows], [r[f"{prefix}_max"] for r in rows], alpha=0.2,
                    color=line.get_color())


def _ordered_sizes(rows: Iterable[dict[str, Any]]) -> list[int]:
    return sorted({int(r["requested_support"]) for r in rows})


def plot_dice_vs_support(acc: list[dict[str, Any]], labels: Sequence[str], path: Path) -> Path | None:
    """Mean Dice over seeds vs S per variant, min-max over seeds shaded; one panel per method."""
    if not acc:
        return None
    methods = [m for m in METHOD_LABELS if any(r["method"] == m for r in acc)]
    fig, axes = panel_figure(len(methods), len(methods), (4.2, 3.4))
    for ax, method in zip(axes[0], methods):
        for label in labels:
            sel = sorted((r for r in acc if r["variant"] == label and r["method"] == method),
                         key=lambda r: int(r["requested_support"]))
            if not sel:
                continue
            _mean_band(ax, [int(r["requested_support"]) for r in sel], sel, "dice", label)
        sizes = _ordered_sizes(r for r in acc if r["method"] == method)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("support size S (requested)", fontsize=8)
        ax.set_title(f"{method} ({METHOD_LABELS[method]})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("mean Dice over tasks", fontsize=8)
    axes[0, 0].legend(fontsize=7, frameon=False)
    fig.suptitle("Dice vs S (line: mean over seeds; band: min-max over seeds)", fontsize=9)
    save_figure(fig, path)
    return path


def plot_drop_vs_severity(rob: list[dict[str, Any]], labels: Sequence[str], path: Path) -> Path | None:
    """Dice drop vs severity per variant (mean over seeds, min-max shaded); a panel per perturbation x where."""
    if not rob:
        return None
    panels = list(dict.fromkeys((r["perturbation"], r["where"]) for r in rob))
    fig, axes = panel_figure(len(panels), 4, (3.2, 2.6), extra_height=0.6)
    for ax, (pert, where) in zip(axes.flat, panels):
        for label in labels:
            sel = sorted((r for r in rob if r["variant"] == label and r["perturbation"] == pert
                          and r["where"] == where), key=lambda r: r["severity"])
            if not sel:
                continue
            _mean_band(ax, [r["severity"] for r in sel], sel, "drop", label)
        ax.set_title(f"{pert} on {where}", fontsize=8)
        ax.set_xticks(sorted({r["severity"] for r in rob}))
        ax.axhline(0, color="grey", lw=0.5)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    label_panels(fig, axes, xlabel="severity", ylabel="Dice drop", legend_cols=5,
                 title="Dice drop (clean minus perturbed) vs severity; band: min-max over seeds")
    save_figure(fig, path)
    return path
