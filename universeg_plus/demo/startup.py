"""What the demo page shows before any click: copies of the bundled example files, the first task preloaded.

Gradio serves files only from its temp dir, the working directory and ``allowed_paths``, so the
example files are copied once per task into a folder of the demo's own (no gradio needed here).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Mapping
from pathlib import Path

from .logic import ExampleTask

__all__ = ["ExampleFiles", "Selection"]

#: ``(support images, support masks, target, reference)`` as paths gradio may serve.
Selection = tuple[list[str], list[str], str, str]


class ExampleFiles:
    """Copies of the bundled example tasks' files under ``root``, made once per task (thread-safe).

    Args:
        tasks: Example tasks by name (:func:`universeg_plus.demo.logic.list_example_tasks`).
        root: Folder for the copies.
    """

    def __init__(self, tasks: Mapping[str, ExampleTask], root: str | Path) -> None:
        self.tasks = dict(tasks)
        self.root = Path(root)
        self._lock = threading.Lock()

    @property
    def first(self) -> str | None:
        """The task selected when the page opens (the first by name), or ``None`` without tasks."""
        return next(iter(self.tasks), None)

    def selection(self, name: str) -> Selection:
        """Paths of the copied support images, support masks, target and reference of task ``name``.

        Raises:
            ValueError: ``name`` is not an example task (the message lists them).
        """
        if name not in self.tasks:
            raise ValueError(f"unknown example task {name!r}; choose one of: {', '.join(self.tasks)}")
        imgs, masks, target, ref = self.tasks[name].selection()
        folder = self.root / name
        with self._lock:
            return (
                [self._copy(p, folder / "images") for p in imgs],
                [self._copy(p, folder / "masks") for p in masks],
                self._copy(target, folder / "target"),
                self._copy(ref, folder / "reference"),
            )

    def initial(self) -> Selection | tuple[None, None, None, None]:
        """The selection of :attr:`first` (what the page starts with), or four ``None`` without tasks."""
        return self.selection(self.first) if self.first is not None else (None, None, None, None)

    @staticmethod
    def _copy(path: Path, folder: Path) -> str:
        dest = folder / path.name
        if not dest.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        return str(dest)
