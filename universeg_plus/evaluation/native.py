"""Evaluation tasks as a Predictor user has them: the image files and binary masks at their own size.

Training keeps every task as model-size tensors (:class:`~universeg_plus.data.tasks.BinaryTask`);
evaluation must instead score what a user gets, so it goes back to the files: for each pair of a
task it keeps the image array exactly as read from disk and the task's binary mask (the label map's
indicator of the task's label ids) at the image's stored size. Support sets are then built with
``SupportSet.from_arrays`` and targets segmented with ``Predictor.predict_many``, which returns
probabilities at each target's original size, scored against these native masks.

::

    coll = load_task_root(root, (128, 128), include=["msd_spleen_ct"])  # which pairs form each task
    tasks = native_tasks(coll, root)       # the same pairs, read back from the files
    tasks[0].images[0]                    # (H, W) array as stored (e.g. uint8)
    tasks[0].masks[0]                     # (H, W) bool

Tasks without source folders (a task file, NIfTI slices) can be evaluated at their stored
resolution with :func:`stored_task`; the report then says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.tasks import BinaryTask
from ..io.images import PIL_SUFFIXES
from ..io.inputs import as_label_map, probabilities_to_size, to_array

__all__ = ["EvalTask", "as_eval_tasks", "native_tasks", "stored_task", "to_original_size"]


@dataclass
class EvalTask:
    """One binary task's pairs at the resolution a user has them.

    Attributes:
        name: ``"<dataset>/<label name>"``, as the :class:`~universeg_plus.data.tasks.BinaryTask`.
        dataset: The dataset (folder) name.
        images: One array per pair, as read (``(H, W)`` or ``(H, W, 3)``, any numeric dtype).
        masks: One ``(H, W)`` bool array per pair (the task's foreground), at its image's size.
        stems: File stems of the pairs.
        resolution: ``"native"`` (read from the files) or ``"stored HxW"`` (the task's tensors).
    """

    name: str
    dataset: str
    images: list[np.ndarray]
    masks: list[np.ndarray]
    stems: list[str] = field(default_factory=list)
    resolution: str = "native"

    def __post_init__(self) -> None:
        if len(self.images) != len(self.masks):
            raise ValueError(f"task {self.name}: {len(self.images)} images but {len(self.masks)} masks")
        for i, (img, m) in enumerate(zip(self.images, self.masks)):
            if tuple(img.shape[:2]) != tuple(m.shape):
                raise ValueError(
                    f"task {self.name}, pair {self.stems[i] if self.stems else i}: image {tuple(img.shape)} "
                    f"and mask {tuple(m.shape)} differ in size"
                )

    def __len__(self) -> int:
        return len(self.images)


def stored_task(task: BinaryTask) -> EvalTask:
    """A task's stored tensors as the user's files (``(H, W)`` float images in [0, 1], bool masks)."""
    h, w = task.size
    return EvalTask(
        task.name,
        task.dataset,
        [im[0].cpu().numpy() for im in task.images],
        [m[0].cpu().numpy() > 0.5 for m in task.masks],
        list(task.stems) or [str(i) for i in range(len(task))],
        f"stored {h}x{w}",
    )


def _files_by_stem(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"task folder {folder} does not exist")
    return {p.stem: p for p in folder.iterdir() if p.suffix.lower() in PIL_SUFFIXES}


def native_tasks(tasks: Iterable[BinaryTask], root: str | os.PathLike) -> list[EvalTask]:
    """The pairs of ``tasks`` read back from ``<root>/<dataset>/{images,masks}/<stem>.*`` at their own size.

    Which pairs form a task (and their order) is taken from ``tasks`` (as
    :func:`~universeg_plus.data.tasks.load_task_root` chose them), so the evaluation protocol's
    targets and support sets are unchanged; only their resolution differs.

    Raises:
        FileNotFoundError: a dataset folder or a pair's file is missing.
        ValueError: a task sliced from volumes (no per-pair files), or an image and mask of different size.
    """
    root = Path(root)
    out = []
    cache: dict[str, tuple[dict[str, Path], dict[str, Path]]] = {}
    for task in tasks:
        if task.axis is not None:
            raise ValueError(f"task {task.name} is sliced from volumes: evaluate it at its stored size (stored_task)")
        if task.dataset not in cache:
            d = root / task.dataset
            cache[task.dataset] = (_files_by_stem(d / "images"), _files_by_stem(d / "masks"))
        img_files, mask_files = cache[task.dataset]
        ids = np.asarray(task.labels)
        images, masks = [], []
        for stem in task.stems:
            if stem not in img_files or stem not in mask_files:
                raise FileNotFoundError(f"task {task.name}: no image/mask file for {stem!r} under {root / task.dataset}")
            images.append(to_array(img_files[stem], "image"))
            masks.append(np.isin(as_label_map(mask_files[stem], str(mask_files[stem])), ids))
        out.append(EvalTask(task.name, task.dataset, images, masks, list(task.stems), "native"))
    return out


def as_eval_tasks(tasks: Iterable[BinaryTask | EvalTask]) -> list[EvalTask]:
    """``EvalTask`` s as given; ``BinaryTask`` s at their stored size (:func:`stored_task`)."""
    return [t if isinstance(t, EvalTask) else stored_task(t) for t in tasks]


def to_original_size(probs: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """Model-size probabilities ``(T, 1, h, w)`` -> one ``(H, W)`` float32 array per target at its size.

    The rule ``Predictor`` applies to its outputs (:func:`~universeg_plus.io.inputs.probabilities_to_size`).
    """
    if probs.ndim != 4 or probs.shape[1] != 1 or len(sizes) != probs.shape[0]:
        raise ValueError(f"probs must be (T, 1, h, w) with T = {len(sizes)} sizes, got {tuple(probs.shape)}")
    return [probabilities_to_size(p, size)[0] for p, size in zip(probs, sizes)]
