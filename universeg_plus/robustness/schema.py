"""The robustness study's results CSV: its columns and how its rows are read back.

Shared by the runner (which appends rows) and the report (which reads them), so neither imports
the other for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..io.tables import csv_header, read_csv_rows

__all__ = ["CLEAN", "COLUMNS", "KEY_COLUMNS", "iter_rows", "read_done"]

#: Columns that identify a row (a rerun skips rows whose key is already in the CSV).
KEY_COLUMNS = ("task", "model", "backend", "perturbation", "severity", "where", "target")
#: Every column, in file order.
COLUMNS = (
    *KEY_COLUMNS,
    "dice",
    "iou",
    "sensitivity",
    "specificity",
    "hd95",
    "inference_ms",
    "agreement_dice",
    "max_abs_dprob",
    "saliency_rmse",
)
#: ``(perturbation, severity, where)`` of the clean case.
CLEAN = ("none", 0, "none")


def iter_rows(path: str | os.PathLike) -> Iterable[dict[str, str]]:
    """The complete rows of a results CSV as dicts of strings."""
    yield from read_csv_rows(path)


def read_done(path: Path) -> set[tuple[str, ...]]:
    """Keys of the complete rows already in the results CSV (a partial last line is ignored).

    Raises:
        ValueError: the file has other columns than :data:`COLUMNS`.
    """
    header = csv_header(path)
    if header is None:
        return set()
    if tuple(header) != COLUMNS:
        raise ValueError(f"{path} has columns {header}, expected {list(COLUMNS)}; use another out_dir")
    return {tuple(row[k] for k in KEY_COLUMNS) for row in read_csv_rows(path)}
