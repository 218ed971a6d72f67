"""Weights shipped with the code: found on disk, never over the network.

Search order: every folder in ``$UNIVERSEG_PLUS_WEIGHTS_DIR`` (``os.pathsep``-separated), then
``<repo>/weights/`` when running from a checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

from .folder import CONFIG_NAME

__all__ = ["WEIGHTS_DIR_ENV", "find_shipped_weights", "shipped_weights_dirs"]

WEIGHTS_DIR_ENV = "UNIVERSEG_PLUS_WEIGHTS_DIR"

# universeg_plus/hub/shipped.py -> <repo>/weights
_CHECKOUT_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def shipped_weights_dirs() -> list[Path]:
    """Folders searched for shipped weights, in order (only those that exist)."""
    dirs = [Path(p).expanduser() for p in os.environ.get(WEIGHTS_DIR_ENV, "").split(os.pathsep) if p]
    dirs.append(_CHECKOUT_WEIGHTS)
    return [d for d in dirs if d.is_dir()]


def find_shipped_weights(local_dir: str, filename: str) -> Path | None:
    """The first ``<weights dir>/<local_dir>`` holding ``filename`` and ``config.json``, else ``None``."""
    for base in shipped_weights_dirs():
        folder = base / local_dir
        if (folder / filename).is_file() and (folder / CONFIG_NAME).is_file():
            return folder
    return None
