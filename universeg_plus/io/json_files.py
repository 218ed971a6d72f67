"""Small JSON files beside results (markers, training descriptions, timings): read checked, write atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text

__all__ = ["read_json_object", "write_json"]


def read_json_object(path: str | os.PathLike) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``None`` when there is no such file.

    Raises:
        ValueError: the file is not JSON, or holds something other than an object (named).
    """
    p = Path(path)
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot parse {p}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{p} must hold a JSON object, got {type(data).__name__}")
    return data


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON (values JSON cannot hold as ``str``) atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")
