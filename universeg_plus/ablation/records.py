"""What the ablation stages leave beside their outputs: markers (``ablation.json``: done, and for
which settings), fingerprints of those settings, and ``timings.json`` (wall time, command, machine)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from ..io.json_files import read_json_object, write_json
from .config import AblationConfig

__all__ = [
    "MARKER_NAME",
    "check_marker",
    "fingerprint",
    "machine_info",
    "read_marker",
    "read_timings",
    "record_time",
    "write_marker",
]

MARKER_NAME = "ablation.json"
TIMINGS_NAME = "timings.json"


def machine_info() -> dict[str, Any]:
    """CPU model, core count, torch threads and version, GPU (if any), OS."""
    import torch

    from ..devices import cpu_model

    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def fingerprint(obj: Any) -> str:
    """A short hash of JSON-able settings (key order does not matter)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """``<folder>/ablation.json`` as a dict, or ``None`` when absent.

    Raises:
        ValueError: the file is not a JSON object.
    """
    return read_json_object(Path(folder) / MARKER_NAME)


def write_marker(folder: str | os.PathLike, data: dict[str, Any]) -> None:
    """Write ``<folder>/ablation.json`` atomically."""
    write_json(Path(folder) / MARKER_NAME, data)


def check_marker(folder: str | os.PathLike, marker: dict[str, Any] | None, fp: str, what: str) -> None:
    """Refuse a folder whose marker was written for other settings.

    Raises:
        ValueError: naming the folder, both fingerprints and what to do.
    """
    if marker is not None and marker.get("fingerprint") != fp:
        raise ValueError(
            f"{folder} holds {what} made with other settings (fingerprint {marker.get('fingerprint')}, now "
            f"{fp}); choose another out_dir or delete that folder to redo it"
        )


def read_timings(cfg: AblationConfig) -> dict[str, list[dict[str, Any]]]:
    """``<out_dir>/timings.json``: ``{stage: [invocation, ...]}`` (empty without one)."""
    return read_json_object(Path(cfg.out_dir) / TIMINGS_NAME) or {}


def record_time(cfg: AblationConfig, stage: str, wall_s: float, work: int, command: str | None) -> None:
    """Append this invocation's wall time, command and machine to ``<out_dir>/timings.json`` (if it did work)."""
    if not work:
        return
    data = read_timings(cfg)
    data.setdefault(stage, []).append(
        {"wall_s": round(wall_s, 2), "work_items": work, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
         "command": command, "machine": machine_info()}
    )
    write_json(Path(cfg.out_dir) / TIMINGS_NAME, data)
