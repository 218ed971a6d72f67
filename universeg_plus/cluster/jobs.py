"""The work list of a dataset run: which input is written to which output.

Inputs come as a folder (its image/volume files, not recursive, outputs side by side in the output
folder: the names ``universeg-plus segment`` gives), a glob (``scans/**/*.nii.gz``; outputs keep the
sub-folders below the glob's fixed part), a manifest (CSV or Parquet with a ``path`` column and an
optional ``output`` column of names relative to the output folder), or a sequence of paths.

Everything here runs on the driver, before any worker starts: the whole list is needed to refuse two
inputs that would write one output, and to skip complete outputs without shipping them to a worker.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..io.images import IMAGE_SUFFIXES, list_image_files
from ..io.inputs import output_name

__all__ = ["MANIFEST_SUFFIXES", "Job", "check_unique_outputs", "list_jobs"]

#: Manifest files: a table with a ``path`` column (and optionally ``output``).
MANIFEST_SUFFIXES = (".csv", ".parquet")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Job:
    """One input and the file its label map goes to."""

    input: Path
    output: Path


def _is_image(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and not name.startswith(".") and name.endswith(IMAGE_SUFFIXES)


def _glob_root(pattern: str) -> Path:
    """The fixed folder part of a glob pattern (``a/b/**/*.png`` -> ``a/b``)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _from_glob(pattern: str, out_dir: Path) -> list[Job]:
    root = _glob_root(pattern)
    files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if _is_image(Path(p)))
    if not files:
        raise ValueError(f"no image or volume files ({', '.join(IMAGE_SUFFIXES)}) match {pattern}")
    return [Job(f, out_dir / f.parent.relative_to(root) / output_name(f)) for f in files]


def _manifest_rows(path: Path) -> list[dict[str, str]]:
    if path.name.lower().endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ImportError(
                "reading a Parquet manifest needs pyarrow: pip install 'universeg-plus[cluster]'"
            ) from exc
        table = pq.read_table(path)
        return [{k: "" if v is None else str(v) for k, v in row.items()} for row in table.to_pylist()]
    from ..io.tables import read_csv_rows

    return read_csv_rows(path)


def _from_manifest(path: Path, out_dir: Path) -> list[Job]:
    rows = _manifest_rows(path)
    if not rows:
        raise ValueError(f"the manifest {path} has no rows")
    if "path" not in rows[0]:
        raise ValueError(f"the manifest {path} needs a 'path' column (optionally 'output'); it has {sorted(rows[0])}")
    jobs = []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        if not row["path"]:
            raise ValueError(f"the manifest {path} has an empty path on line {i}")
        src = Path(row["path"])
        src = src if src.is_absolute() else path.parent / src
        name = (row.get("output") or "").strip()
        if name and (Path(name).is_absolute() or ".." in Path(name).parts):
            raise ValueError(
                f"output names in a manifest are relative to the output folder, got {name!r} on line {i} of {path}"
            )
        jobs.append(Job(src, out_dir / (name or output_name(src))))
    return jobs


def list_jobs(inputs: str | os.PathLike | Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> list[Job]:
    """The work list for ``inputs`` (see the module docstring), in input order.

    Raises:
        FileNotFoundError: a folder, manifest or listed file that does not exist (files named in a
            manifest are not checked here: a missing one is a failed row of the run).
        ValueError: nothing to segment, a manifest without a ``path`` column, or two inputs that
            would be written to the same output (both named).
    """
    out = Path(out_dir)
    if isinstance(inputs, (str, os.PathLike)):
        text = os.fspath(inputs)
        path = Path(text)
        if path.is_dir():
            files = list_image_files(path)
            if not files:
                raise ValueError(f"no image or volume files ({', '.join(IMAGE_SUFFIXES)}) in {path}")
            jobs = [Job(f, out / output_name(f)) for f in files]
        elif path.name.lower().endswith(MANIFEST_SUFFIXES) and path.is_file():
            jobs = _from_manifest(path, out)
        elif not path.exists() and _GLOB_CHARS & set(text):
            jobs = _from_glob(text, out)
        elif path.is_file():
            jobs = [Job(path, out / output_name(path))]
        else:
            raise FileNotFoundError(f"inputs not found: {path} (give a folder, a glob, a CSV/Parquet manifest or files)")
    else:
        paths = [Path(p) for p in inputs]
        if not paths:
            raise ValueError("inputs is an empty list")
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} input file(s) not found, e.g. {missing[0]}")
        jobs = [Job(p, out / output_name(p)) for p in paths]
    check_unique_outputs(jobs)
    return jobs


def check_unique_outputs(jobs: Sequence[Job]) -> None:
    """Refuse two jobs that write one output (ValueError naming both inputs)."""
    seen: dict[Path, Path] = {}
    for job in jobs:
        key = Path(os.path.normpath(job.output))
        if key in seen:
            raise ValueError(
                f"inputs {seen[key]} and {job.input} would both be written to {job.output}; rename one "
                "(or name the outputs in a manifest's 'output' column)"
            )
        seen[key] = job.input

