"""Which tasks a set of weights was trained or validated on, and the refusal to evaluate on them.

Training writes ``training.json`` next to the weights (``train_datasets``, ``train_tasks``,
``validation_datasets``, ``held_out_datasets``, ``step``, ...). Evaluation reads it, when present,
and refuses any task whose dataset (or full name) training sampled or validation read (model
selection saw it): held-out means split by task, not by image. A warm start's ``init`` lineage
counts too. The project's split: :mod:`universeg_plus.data.splits`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..io.json_files import read_json_object

__all__ = ["TRAINING_INFO_NAME", "check_held_out", "read_training_info", "seen_datasets", "training_datasets"]

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


def _validation_datasets(info: dict[str, Any]) -> set[str]:
    names = {str(d) for d in info.get("validation_datasets") or ()}
    init = info.get("init")
    if isinstance(init, dict) and isinstance(init.get("training"), dict):
        names |= _validation_datasets(init["training"])
    return names


def seen_datasets(info: dict[str, Any]) -> dict[str, str]:
    """Every dataset/task name the weights' training saw, with how: ``"trained on"`` or ``"validated on"``."""
    seen = {name: "validated on" for name in _validation_datasets(info)}
    seen.update({name: "trained on" for name in training_datasets(info)})
    return seen


def check_held_out(tasks: Iterable[tuple[str, str]], info: dict[str, Any] | None, source: str = "the weights") -> None:
    """Refuse evaluation on tasks that training sampled or that its validation (model selection) read.

    Args:
        tasks: ``(task name, dataset)`` pairs to be evaluated.
        info: Training description (:func:`read_training_info`); ``None`` = unknown, nothing checked.
        source: Where ``info`` came from, for the message.

    Raises:
        ValueError: naming every evaluation task whose dataset or name training or validation used.
    """
    if info is None:
        return
    seen = seen_datasets(info)
    clash = {}
    for name, dataset in tasks:
        how = seen.get(name) or seen.get(dataset)
        if how is not None:
            clash[name] = how
    if clash:
        listed = ", ".join(f"{name} ({how})" for name, how in sorted(clash.items()))
        raise ValueError(
            f"refusing to evaluate on {len(clash)} task(s) that {source} were trained or validated on: {listed}. "
            "Evaluation tasks must be held out by task (dataset), not by image, and unseen by model selection; "
            "choose held-out tasks with --tasks (the project's: universeg_plus.data.splits.HELD_OUT)"
        )
