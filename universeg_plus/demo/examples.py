"""Bundled example tasks: task folders of ``images/`` and ``masks/`` paired by file stem."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.examples import default_examples_dir
from ..io.images import file_stem, list_image_files

__all__ = ["ExampleTask", "default_examples_dir", "list_example_tasks"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExampleTask:
    """A bundled task folder: ``images/`` and ``masks/`` paired by file stem.

    Attributes:
        name: The folder name.
        images: Image files, sorted by name.
        masks: The matching mask files, same order.
    """

    name: str
    images: tuple[Path, ...]
    masks: tuple[Path, ...]

    def selection(self, support_size: int = 5) -> tuple[list[Path], list[Path], Path, Path]:
        """``support_size`` evenly spaced examples as the support set and one other as the target.

        Returns:
            ``(support images, support masks, target image, target's reference mask)``.

        Raises:
            ValueError: the task has too few examples to keep one out as the target.
        """
        n = len(self.images)
        if n < 2:
            raise ValueError(f"example task {self.name} has {n} example(s); it needs at least 2")
        k = max(1, min(int(support_size), n - 1))
        pick = sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))
        rest = [i for i in range(n) if i not in pick]
        target = rest[len(rest) // 2]
        return [self.images[i] for i in pick], [self.masks[i] for i in pick], self.images[target], self.masks[target]


def list_example_tasks(folder: str | os.PathLike | None) -> dict[str, ExampleTask]:
    """The task folders (each holding ``images/`` and ``masks/``) in ``folder``, by name.

    Tasks whose files do not pair up by stem are skipped with a warning; a missing or ``None``
    folder gives no tasks.
    """
    if folder is None or not Path(folder).is_dir():
        return {}
    tasks: dict[str, ExampleTask] = {}
    for sub in sorted(Path(folder).iterdir()):
        if not ((sub / "images").is_dir() and (sub / "masks").is_dir()):
            continue
        images = {file_stem(p): p for p in list_image_files(sub / "images")}
        masks = {file_stem(p): p for p in list_image_files(sub / "masks")}
        if not images or set(images) != set(masks):
            log.warning("skipping example task %s: images and masks do not pair up by file stem", sub)
            continue
        stems = sorted(images)
        tasks[sub.name] = ExampleTask(sub.name, tuple(images[s] for s in stems), tuple(masks[s] for s in stems))
    return tasks
