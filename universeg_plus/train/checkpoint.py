"""Training checkpoints (one file, exact resume), resuming from one, and the exported model folder.

* ``<out>/last.pt``: model, optimiser, scheduler, step, RNG states (global torch, CUDA, and each
  process's data generators), best validation score, wall time, the run config
  (:func:`checkpoint_state`; :func:`restore_checkpoint` continues from it exactly: the same
  parameters as an uninterrupted run, and ``log.csv``/``val.csv`` cut back to its step).
* ``<out>/model/``: ``model.safetensors`` + ``config.json`` (the :class:`UniverSegConfig`) +
  ``training.json`` (run config, training and held-out datasets, step): what
  ``create_model``/evaluation load. ``<out>/best/`` has the same layout for the best validation step.

All writes are atomic (temp file + ``os.replace``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io.atomic import atomic_path
from ..io.json_files import write_json
from ..io.tables import keep_csv_rows

__all__ = [
    "LOG_FILES",
    "DataStreams",
    "Resumed",
    "checkpoint_state",
    "load_checkpoint",
    "resolve_resume",
    "restore_checkpoint",
    "save_checkpoint",
    "save_model_folder",
    "truncate_logs",
    "warm_start",
]

log = logging.getLogger(__name__)

LOG_FILES = ("log.csv", "val.csv")


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
        write_json(out / "training.json", training_info)
    return out


class DataStreams:
    """One process's random streams: ``data`` on the device (episodes, augmentation) and ``host`` on
    the CPU (per-step scalars, so that drawing them needs no device sync).

    Seeded from (run seed, process rank); a checkpoint stores every process's states.
    """

    def __init__(self, seed: int, rank: int, device: torch.device) -> None:
        self.seed, self.rank = seed, rank
        self.data = torch.Generator(device=device)
        self.host = torch.Generator()
        self.reseed()

    def reseed(self, offset: int = 0) -> None:
        """Seed both streams from (seed, rank, ``offset``)."""
        self.data.manual_seed(self.seed * 1_000_003 + 17 * self.rank + 1 + offset)
        self.host.manual_seed(self.seed * 1_000_003 + 17 * self.rank + 2 + offset)


def checkpoint_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    *,
    step: int,
    best_val_dice: float,
    elapsed_s: float,
    run_config: dict[str, Any],
    data_states: list[torch.Tensor],
    host_states: list[torch.Tensor],
    data_device: str,
    device: torch.device,
) -> dict[str, Any]:
    """What ``last.pt`` holds (the format :func:`restore_checkpoint` reads).

    Args:
        model: The unwrapped model (its ``config`` is stored to refuse another architecture).
        optimizer, scheduler: Their state dicts are stored.
        step: Optimiser steps done.
        best_val_dice: Best periodic validation Dice so far (``-1`` when none).
        elapsed_s: Training wall time of all invocations so far.
        run_config: The run config as JSON data.
        data_states, host_states: Every process's :class:`DataStreams` states, by rank.
        data_device: Device type of the data streams (``"cpu"``/``"cuda"``).
        device: This process's device (its CUDA RNG state is stored).
    """
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "best_val_dice": best_val_dice,
        "elapsed_s": elapsed_s,
        "model_config": model.config.model_dump(mode="json"),
        "run_config": run_config,
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "data": [s.cpu() for s in data_states],
            "data_device": data_device,
            "host": [s.cpu() for s in host_states],
        },
    }


def resolve_resume(resume: str | None, out_dir: str | os.PathLike) -> Path | None:
    """The checkpoint to resume from: ``"auto"`` is ``<out_dir>/last.pt`` when it exists (else ``None``)."""
    if resume == "auto":
        last = Path(out_dir) / "last.pt"
        return last if last.is_file() else None
    return Path(resume) if resume is not None else None


@dataclass(frozen=True)
class Resumed:
    """Where a restored run continues: ``step``, ``best_val_dice`` (``-1``: none yet), ``elapsed_s``."""

    step: int
    best_val_dice: float
    elapsed_s: float


def restore_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    streams: DataStreams,
    world_size: int,
    device: torch.device,
) -> Resumed:
    """Load a checkpoint into the model, optimiser, scheduler and random streams, for an exact resume.

    The global torch (and CUDA) RNG states are restored too. When the checkpoint holds another
    number of processes, or streams on another device type, the data streams are re-seeded from
    the step instead (with a warning): training continues, but not bit for bit.

    Raises:
        FileNotFoundError: no such checkpoint.
        ValueError: unreadable, or written for another architecture (named).
    """
    ck = load_checkpoint(path)
    saved_model = ck.get("model_config")
    if saved_model is not None and saved_model != model.config.model_dump(mode="json"):
        raise ValueError(f"checkpoint {path} is for a different architecture: {saved_model}")
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    scheduler.load_state_dict(ck["scheduler"])
    resumed = Resumed(int(ck["step"]), float(ck.get("best_val_dice", -1.0)), float(ck.get("elapsed_s", 0.0)))
    rng = ck["rng"]
    torch.set_rng_state(rng["torch"])
    if device.type == "cuda" and rng.get("cuda") is not None:
        torch.cuda.set_rng_state(rng["cuda"], device)
    data_states, host_states = rng["data"], rng["host"]
    if len(data_states) == world_size and streams.data.device.type == rng.get("data_device", "cpu"):
        streams.data.set_state(data_states[streams.rank].to("cpu"))
        streams.host.set_state(host_states[streams.rank].to("cpu"))
    else:
        log.warning(
            "checkpoint has %d data streams on %s, this run has %d on %s: data streams re-seeded",
            len(data_states),
            rng.get("data_device"),
            world_size,
            streams.data.device.type,
        )
        streams.reseed(resumed.step)
    return resumed


def truncate_logs(out_dir: str | os.PathLike, step: int) -> None:
    """Drop rows of ``log.csv`` and ``val.csv`` after ``step`` (a crashed run may have logged past
    its last checkpoint), atomically."""
    for name in LOG_FILES:
        keep_csv_rows(Path(out_dir) / name, lambda r: int(r["step"]) <= step)


def warm_start(model: nn.Module, folder: str | os.PathLike) -> None:
    """Load a weights folder's parameters into ``model`` (same architecture) for a new run.

    Raises:
        FileNotFoundError: no such folder or files.
        ValueError: the folder's architecture differs from ``model``'s (both named).
    """
    from ..hub.folder import load_folder
    from ..model import UniverSegPlus

    src = load_folder(folder, model_cls=UniverSegPlus)
    if src.config != model.config:
        raise ValueError(
            f"train.init {folder} holds a {src.config.model_dump(mode='json')} network, but this run trains "
            f"{model.config.model_dump(mode='json')}"
        )
    model.load_state_dict(src.state_dict())
    log.info("warm start from %s", folder)
