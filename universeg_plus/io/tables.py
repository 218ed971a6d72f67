"""Tables on disk: CSV files written atomically or appended durably, and markdown tables.

* :func:`write_csv` rewrites a whole CSV atomically (temporary file + rename: a reader, or a crash,
  sees the old file or the new one, never half of it).
* :func:`append_csv` adds rows to a log (training log, study results) in one write, flushed to disk;
  a partial last line left by a crash is dropped first, so a row is never glued to a fragment.
* :func:`read_csv_rows` reads rows back as strings, ignoring such a partial last line.
* :func:`keep_csv_rows` rewrites a CSV atomically with only the rows a predicate keeps (a resumed
  run drops what was logged after its checkpoint).

Cells are formatted by :func:`format_cell`: floats with 6 significant digits (``nan``, ``inf``),
``None`` as an empty cell, everything else with ``str``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text

__all__ = [
    "append_csv",
    "csv_header",
    "format_cell",
    "keep_csv_rows",
    "markdown_table",
    "read_csv_rows",
    "write_csv",
]

log = logging.getLogger(__name__)


def format_cell(value: Any) -> str:
    """A CSV cell: ``""`` for ``None``, floats as ``%.6g`` (``nan``, ``inf``), else ``str(value)``."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _render(rows: Iterable[Mapping[str, Any]], fields: Sequence[str], header: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(fields)
    for r in rows:
        w.writerow([format_cell(r.get(k)) for k in fields])
    return buf.getvalue()


def write_csv(rows: Iterable[Mapping[str, Any]], fields: Sequence[str], path: str | os.PathLike) -> Path:
    """Write ``rows`` as a CSV with columns ``fields``, atomically (other keys are ignored, missing
    ones give empty cells)."""
    return atomic_write_text(path, _render(rows, list(fields), header=True))


def _drop_partial_line(path: Path) -> int:
    """Cut a partial last line (a crash mid-write) off the file; returns the size left."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return size
    raw = path.read_bytes()
    cut = raw.rfind(b"\n") + 1
    log.warning("dropping an incomplete last line of %s (interrupted write)", path)
    with open(path, "r+b") as fh:
        fh.truncate(cut)
    return cut


def csv_header(path: str | os.PathLike) -> list[str] | None:
    """The column names of a CSV, or ``None`` when the file is missing or empty."""
    p = Path(path)
    if not p.is_file():
        return None
    with open(p, newline="", encoding="utf-8") as fh:
        first = fh.readline()
    if not first.endswith("\n"):
        return None
    return next(csv.reader([first]))


def append_csv(rows: Iterable[Mapping[str, Any]], fields: Sequence[str], path: str | os.PathLike) -> Path:
    """Append rows to a CSV (header first when the file is new or empty), in one flushed write.

    Missing keys give empty cells, other keys are ignored.

    Raises:
        ValueError: the file has other columns than ``fields`` (both named).
    """
    p = Path(path)
    fields = list(fields)
    new = not p.is_file() or _drop_partial_line(p) == 0
    if not new:
        have = csv_header(p)
        if have != fields:
            raise ValueError(f"{p} has columns {have}, expected {fields}; write to another file")
    text = _render(rows, fields, header=new)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a", newline="", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return p


def read_csv_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The complete rows of a CSV as dicts of strings (a partial last line is ignored; ``[]`` when empty).

    Raises:
        FileNotFoundError: no such file.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"table {p} does not exist")
    raw = p.read_bytes()
    text = raw[: raw.rfind(b"\n") + 1].decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def keep_csv_rows(path: str | os.PathLike, keep: Callable[[dict[str, str]], bool]) -> int:
    """Rewrite a CSV atomically with only the rows ``keep`` accepts (nothing happens when it is missing).

    Returns:
        How many rows were dropped.
    """
    p = Path(path)
    header = csv_header(p)
    if header is None:
        return 0
    rows = read_csv_rows(p)
    kept = [r for r in rows if keep(r)]
    text = _render(kept, header, header=True)
    if len(kept) != len(rows) or p.read_bytes() != text.encode("utf-8"):
        atomic_write_text(p, text)
    return len(rows) - len(kept)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> list[str]:
    """A markdown table as lines.

    Args:
        header: Column titles.
        rows: Cells (converted with ``str``).
        align: One character per column, ``"l"`` or ``"r"`` (default: no alignment marks).

    Raises:
        ValueError: ``align`` or a row has another length than ``header``.
    """
    n = len(header)
    if align is not None and (len(align) != n or set(align) - {"l", "r"}):
        raise ValueError(f"align must be {n} characters of 'l'/'r', got {align!r}")
    rule = "|" + "".join("---:|" if a == "r" else "---|" for a in (align or "l" * n))
    out = ["| " + " | ".join(header) + " |", rule]
    for r in rows:
        cells = [str(c) for c in r]
        if len(cells) != n:
            raise ValueError(f"a row has {len(cells)} cells, the header {n}: {cells}")
        out.append("| " + " | ".join(cells) + " |")
    return out
