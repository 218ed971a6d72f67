"""The report of a dataset run: one CSV row per input, enough to find and rerun every failure.

Columns (:data:`REPORT_FIELDS`): ``input``, ``output``, ``status``, ``error``, ``seconds``, ``worker``.
``status`` is one of :data:`STATUSES`:

* ``ok``: segmented, the output written (atomically) by ``worker`` (``host:pid``) in ``seconds``;
* ``skipped``: the output existed and ``skip_existing`` was on (outputs are only ever complete);
* ``failed``: ``error`` says why (an unreadable file, or a worker that died on every retry);
* ``not-run``: the run was interrupted before this input was done.

``failed`` and ``not-run`` rows are what :func:`rerun_jobs` returns (``--only-failed REPORT``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..io.tables import read_csv_rows, write_csv
from .jobs import Job

__all__ = ["RERUN_STATUSES", "REPORT_FIELDS", "STATUSES", "read_report", "rerun_jobs", "write_report"]

REPORT_FIELDS = ("input", "output", "status", "error", "seconds", "worker")
STATUSES = ("ok", "skipped", "failed", "not-run")
#: Statuses whose inputs a rerun takes up again.
RERUN_STATUSES = ("failed", "not-run")


def write_report(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write the report CSV atomically (a crash leaves the previous report, never half of one)."""
    return write_csv(rows, REPORT_FIELDS, path)


def read_report(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a report written by :func:`write_report`.

    Raises:
        FileNotFoundError: no such file. ValueError: a CSV without the report's columns.
    """
    rows = read_csv_rows(path)
    if rows and not set(REPORT_FIELDS) <= set(rows[0]):
        raise ValueError(f"{path} is not a segment-dataset report: it needs the columns {', '.join(REPORT_FIELDS)}")
    return rows


def rerun_jobs(path: str | os.PathLike) -> list[Job]:
    """The inputs of a report whose status is ``failed`` or ``not-run``, with their outputs as named there."""
    return [Job(Path(r["input"]), Path(r["output"])) for r in read_report(path) if r["status"] in RERUN_STATUSES]
