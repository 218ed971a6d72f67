"""Matplotlib figures for reports: a headless pyplot, panel grids and an atomic PNG save."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .images import atomic_path

__all__ = ["label_panels", "panel_figure", "pyplot", "save_figure"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend.

    Raises:
        ImportError: matplotlib is missing (names the extra to install).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('plots need matplotlib: pip install "universeg-plus[study]"') from exc
    return plt


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 80) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically (never a half-written file), then close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    pyplot().close(fig)
    return Path(path)


def panel_figure(
    n_panels: int,
    max_cols: int,
    panel_size: tuple[float, float],
    extra_height: float = 0.0,
    min_width: float = 0.0,
    sharey: bool = True,
) -> tuple[Any, Any]:
    """A figure with one panel per plot, ``max_cols`` panels a row; panels left over are hidden.

    Args:
        n_panels: Panels needed (at least 1).
        max_cols: Most panels in a row.
        panel_size: ``(width, height)`` of a panel in inches.
        extra_height: Inches added to the height (a legend below the panels).
        min_width: Smallest figure width in inches.
        sharey: Share the y axis between panels.

    Returns:
        ``(figure, axes)`` with ``axes`` a 2D array ``(rows, cols)``.
    """
    ncol = max(1, min(max_cols, n_panels))
    nrow = math.ceil(max(1, n_panels) / ncol)
    fig, axes = pyplot().subplots(
        nrow, ncol, figsize=(max(min_width, panel_size[0] * ncol), panel_size[1] * nrow + extra_height),
        squeeze=False, sharey=sharey, layout="constrained",
    )
    for ax in axes.flat[n_panels:]:
        ax.axis("off")
    return fig, axes


def label_panels(
    fig: Any,
    axes: Any,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    legend_cols: int,
    label_size: int = 8,
    legend_size: int = 7,
    title_size: int = 9,
) -> None:
    """Axis labels on the outer panels, one legend below the panels (from the first panel's lines), a title."""
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=label_size)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel, fontsize=label_size)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=max(1, min(legend_cols, len(names))),
               fontsize=legend_size, frameon=False)
    fig.suptitle(title, fontsize=title_size)
