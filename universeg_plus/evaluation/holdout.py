"""Which tasks a set of weights was trained on, and the refusal to evaluate on them.

Training writes ``training.json`` next to the weights (``train_datasets``, ``train_tasks``,
``held_out_datasets``, ``step``, ...). Evaluation reads it, when present, and refuses any task
whose dataset (or full name) was used for training: held-out means split by task, not by image.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..io.json_files import read_json_object

__all__ = ["TRAINING_INFO_NAME", "check_held_out", "read_training_info", "training_datasets"]

TRAINING_INFO_NAME = "training.json"


def read_training_info(weights_dir: str | os.PathLike | None) -> dict[str, Any] | None:
    """``<weights_dir>/training.json`` as a dict, or ``None`` when there is none.

    Raises:
        ValueError: the file exists but is not a JSON object.
    """
    if weights_dir is None:
        return None
    return read_json_object(Path(weights_dir) / TRAINING_INFO_NAME)


def training_datasets(info: dict[str, Any]) -> set[str]:
    """Dataset and task names a training run used (``train_datasets`` plus ``train_tasks`` and their datasets)."""
    names = {str(d) for d in info.get("train_datasets") or ()}
    for task in info.get("train_tasks") or ():
        task = str(task)
        names.add(task)
        names.add(task.split("/", 1)[0])
    return names


def check_held_out(tasks: Iterable[tuple[str, str]], info: dict[str, Any] | None, source: str = "the weights") -> None:
    """Refuse evaluation on tasks used in training.

    Args:
        tasks: ``(task name, dataset)`` pairs to be evaluated.
        info: Training description (:func:`read_training_info`); ``None`` = unknown, nothing checked.
        source: Where ``info`` came from, for the message.

    Raises:
        ValueError: naming every evaluation task whose dataset or name was used for training.
    """
    if info is None:
        return
    used = training_datasets(info)
    clash = sorted({name for name, dataset in tasks if name in used or dataset in used})
    if clash:
        raise ValueError(
            f"refusing to evaluate on {len(clash)} task(s) that {source} were trained on: {', '.join(clash)}. "
            "Evaluation tasks must be held out by task (dataset), not by image; choose held-out tasks with --tasks"
        )
