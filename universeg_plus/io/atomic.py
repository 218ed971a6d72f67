"""Atomic file writes: write under a temporary name next to the destination, rename over it on success.

A failure (or an interrupt) while writing removes the temporary and leaves the destination as it
was: never a half-written output. Finished files get the usual permissions (``0o666`` minus the
umask), not the ``0o600`` of a private temporary file.

The temporary is ``.<name>.partial-<pid>-<random>/<name>``: a hidden folder whose own name ends in
no file suffix (so ``glob("*.png")`` never picks up a half-written ``.png``), holding a file with the
destination's exact name (so writers that choose the format from the suffix, such as nibabel or
TVM's ``export_library``, still work). A process killed with ``kill -9`` leaves such a folder behind;
:func:`clean_stale_partials` removes the ones whose writer is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PARTIAL_MARK", "atomic_path", "atomic_write_bytes", "atomic_write_text", "clean_stale_partials"]

#: What every temporary folder name holds: ``.<name>.partial-<pid>-<random>``.
PARTIAL_MARK = ".partial-"
_PARTIAL = re.compile(r"^\..+\.partial-(\d+)-[0-9a-f]{8}$")
# temporaries of earlier versions: .<name>.<mkstemp random>.tmp<suffix>
_OLD_TMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9.]+)?$")
_STALE_AFTER_S = 24 * 3600.0
_OLD_TMP_AFTER_S = 60.0  # no current writer makes these: any older than a minute is a leftover


def _current_umask() -> int:
    # Linux reports it without changing it; os.umask can only read it by setting it, which for an
    # instant changes the mode of files other threads create (the demo serves requests on threads).
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _default_mode() -> int:
    return 0o666 & ~_current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path with ``path``'s name; on success it replaces ``path``, on error it is removed.

    The temporary lives in a private hidden folder next to ``path`` (see the module docstring) and
    exists, empty, when the block starts. Parent folders are created.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    folder = dest.parent / f".{dest.name}{PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    folder.mkdir(mode=0o700)
    tmp_path = folder / dest.name
    try:
        tmp_path.touch(mode=0o600)
        yield tmp_path
        os.chmod(tmp_path, _default_mode())
        os.replace(tmp_path, dest)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return Path(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_partials(folder: str | os.PathLike) -> list[Path]:
    """Remove temporaries left in ``folder`` by writers that died (not recursive).

    A ``.<name>.partial-<pid>-<random>`` folder goes when its process no longer runs (or it is older
    than a day, for folders shared between machines); a temporary file of earlier versions
    (``.<name>.<random>.tmp<suffix>``) goes when it is older than a minute. A missing folder is fine.

    Returns:
        The removed paths.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    removed = []
    now = time.time()
    for entry in root.iterdir():
        try:
            age = now - entry.lstat().st_mtime
        except FileNotFoundError:
            continue
        partial = _PARTIAL.match(entry.name)
        if partial and entry.is_dir() and not entry.is_symlink():
            if int(partial.group(1)) != os.getpid() and (not _alive(int(partial.group(1))) or age > _STALE_AFTER_S):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        elif _OLD_TMP.match(entry.name) and entry.is_file() and age > _OLD_TMP_AFTER_S:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
            removed.append(entry)
    return removed
