"""Small JSON files beside results (markers, training descriptions, timings): read checked, write atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text

__all__ = ["read_json_object", "read_label_names", "write_json"]


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


def read_label_names(folder: str | os.PathLike) -> dict[int, str]:
    """``{label: name}`` from ``<folder>/meta.json``'s ``"labels"`` object (``{"1": "nucleus"}``); ``{}`` without one.

    Raises:
        ValueError: ``meta.json`` is not a JSON object, or its labels are not ``{integer: name}``.
    """
    meta = read_json_object(Path(folder) / "meta.json") or {}
    labels = meta.get("labels", {})
    try:
        return {int(k): str(v) for k, v in dict(labels).items()}
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{Path(folder) / 'meta.json'}: \"labels\" must map label ids to names, e.g. {{\"1\": \"nucleus\"}}, "
            f"got {labels!r}"
        ) from exc


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON (values JSON cannot hold as ``str``) atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")
