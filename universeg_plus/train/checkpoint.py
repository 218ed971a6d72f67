"""Training checkpoints (one file, exact resume) and the exported model folder.

* ``<out>/last.pt``: model, optimiser, scheduler, step, RNG states (global torch, CUDA, and each
  process's data generator), best validation score, wall time, the run config.
* ``<out>/model/``: ``model.safetensors`` + ``config.json`` (the :class:`UniverSegConfig`) +
  ``training.json`` (run config, training and held-out datasets, step): what
  ``create_model``/evaluation load. ``<out>/best/`` has the same layout for the best validation step.

All writes are atomic (temp file + ``os.replace``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io.atomic import atomic_path, atomic_write_text

__all__ = ["load_checkpoint", "save_checkpoint", "save_model_folder"]


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a checkpoint dict (tensors, state dicts, plain Python values) atomically."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only``: no code runs).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable or not a training checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {p} does not exist")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot read checkpoint {p}: {exc}") from exc
    needed = {"model", "optimizer", "scheduler", "step", "rng"}
    if not isinstance(state, dict) or not needed <= set(state):
        raise ValueError(f"{p} is not a training checkpoint (needs keys {sorted(needed)})")
    return state


def save_model_folder(
    model: nn.Module, folder: str | os.PathLike, training_info: dict[str, Any] | None = None
) -> Path:
    """Write ``model.safetensors`` + ``config.json`` (+ ``training.json``) into ``folder``.

    Args:
        model: A :class:`~universeg_plus.model.UniverSegPlus` (not wrapped).
        folder: Output folder (created).
        training_info: JSON-serialisable run description, written as ``training.json``.

    Returns:
        The folder path.
    """
    from ..hub.folder import write_model_files

    out = Path(folder)
    write_model_files(model, out)
    if training_info is not None:
        atomic_write_text(out / "training.json", json.dumps(training_info, indent=2, default=str) + "\n")
    return out
