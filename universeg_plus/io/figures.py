"""Matplotlib figures for reports: a headless pyplot and an atomic PNG save."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .images import atomic_path

__all__ = ["pyplot", "save_figure"]


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
