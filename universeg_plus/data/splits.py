"""The project's task collection split once, by dataset: train / validation / held-out.

The split is data in the repo (``universeg_plus/data/splits.json``, shipped as package data):

- ``train``: datasets sampled for training;
- ``validation``: quick validation during training, model selection (``best/``) and early stopping;
- ``held_out``: evaluation, model cards and every reported figure; training never loads them.

A dataset is in exactly one split. Datasets a user adds that the file does not name are training
datasets (the training config's ``data.val_tasks`` / ``data.held_out`` say otherwise per run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

__all__ = ["HELD_OUT", "SPLITS_FILE", "VALIDATION", "Splits", "load_splits"]

SPLITS_FILE = "splits.json"


@dataclass(frozen=True)
class Splits:
    """Dataset names of each split (disjoint)."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    held_out: tuple[str, ...]

    def split_of(self, dataset: str) -> str:
        """``"train"``, ``"validation"`` or ``"held_out"`` (a dataset not in the file trains)."""
        if dataset in self.held_out:
            return "held_out"
        return "validation" if dataset in self.validation else "train"


@lru_cache(maxsize=1)
def load_splits() -> Splits:
    """The split in ``splits.json``.

    Raises:
        ValueError: the file lacks a split, lists a name twice, or puts a dataset in two splits.
    """
    text = resources.files(__package__).joinpath(SPLITS_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    parts = {}
    for key in ("train", "validation", "held_out"):
        names = data.get(key)
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"{SPLITS_FILE}: {key!r} must be a list of dataset names, got {names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"{SPLITS_FILE}: {key!r} lists a dataset twice")
        parts[key] = tuple(names)
    seen: dict[str, str] = {}
    for key, names in parts.items():
        for name in names:
            if name in seen:
                raise ValueError(f"{SPLITS_FILE}: {name!r} is in both {seen[name]!r} and {key!r}")
            seen[name] = key
    return Splits(**parts)


#: Datasets for evaluation only (never loaded by training).
HELD_OUT: tuple[str, ...] = load_splits().held_out
#: Datasets for quick validation, model selection and early stopping during training.
VALIDATION: tuple[str, ...] = load_splits().validation
