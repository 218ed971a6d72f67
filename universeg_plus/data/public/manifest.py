"""The public-task manifest: one entry per task (source, licence, labels, recipe, expected pairs).

Written by ``scripts/make_task_manifest.py`` from the task folders' ``meta.json`` files; it holds
metadata only (paths, commits, hashes, label names, pixel counts), never image data.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Any

__all__ = ["FETCH_KINDS", "RECIPE_KINDS", "load_manifest", "task_names"]

FETCH_KINDS = ("github", "pypi", "debian")
RECIPE_KINDS = ("pairs", "tiles", "stardist_tiles", "mni152_tissue", "atlas_slices")
_REQUIRED = ("name", "modality", "labels", "source", "dataset", "license", "fetch", "recipe", "pairs")


def load_manifest(path: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """Task name -> entry, from ``path`` or the manifest shipped in the package.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an entry lacks a field or names an unknown fetch or recipe kind (the message names it).
    """
    if path is None:
        text = resources.files(__package__).joinpath("manifest.json").read_text(encoding="utf-8")
    else:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such manifest: {path}")
        with open(path, encoding="utf-8") as f:
            text = f.read()
    data = json.loads(text)
    tasks: dict[str, dict[str, Any]] = {}
    for entry in data.get("tasks", []):
        name = entry.get("name", "<unnamed>")
        missing = [k for k in _REQUIRED if k not in entry]
        if missing:
            raise ValueError(f"manifest entry {name!r} lacks {', '.join(missing)}")
        if entry["fetch"].get("kind") not in FETCH_KINDS:
            raise ValueError(f"manifest entry {name!r}: fetch kind must be one of {FETCH_KINDS}, "
                             f"got {entry['fetch'].get('kind')!r}")
        if entry["recipe"].get("kind") not in RECIPE_KINDS:
            raise ValueError(f"manifest entry {name!r}: recipe kind must be one of {RECIPE_KINDS}, "
                             f"got {entry['recipe'].get('kind')!r}")
        tasks[name] = entry
    return tasks


def task_names(manifest: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """The task names of ``manifest`` (default: the shipped one), sorted."""
    return sorted(manifest if manifest is not None else load_manifest())
