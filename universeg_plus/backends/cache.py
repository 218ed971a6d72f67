"""On-disk cache of compiled libraries: keyed by everything that changes the code, written atomically.

An entry is ``<key>.so`` (``export_library``) plus ``<key>.json`` (its sha256 and what it was built
from), the JSON written last. An entry is trusted only when the JSON parses, names this key and the
library's sha256 matches; anything else is deleted and rebuilt.

The hash only proves the pair is whole, not who wrote it: a library in the cache is native code
that ``compile`` loads and runs. So the folder is created with mode ``0o700``, entries are written
``0o600``, and on POSIX systems nothing is read from (or written to) a folder or file that belongs
to another user or that group or others may write (:func:`check_private` says why and how to fix it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io.atomic import atomic_path, atomic_write_text
from ..io.hashing import sha256_file

__all__ = [
    "CACHE_FORMAT",
    "cache_key",
    "check_private",
    "default_cache_dir",
    "load_entry",
    "make_private_dirs",
    "private_cache_dir",
    "store_entry",
    "weights_digest",
]

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the key or entry layout changes


def default_cache_dir() -> Path:
    """``$UNIVERSEG_PLUS_CACHE/tvm``, else ``$XDG_CACHE_HOME/universeg_plus/tvm`` (``~/.cache``)."""
    root = os.environ.get("UNIVERSEG_PLUS_CACHE")
    if root:
        return Path(root) / "tvm"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "universeg_plus" / "tvm"


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def check_private(path: Path) -> None:
    """Refuse a cache folder or file that another user could have written.

    A no-op where there are no POSIX owners and modes (Windows).

    Raises:
        RuntimeError: ``path`` belongs to another user, or group or others may write it; the
            message says which and the command that fixes it.
    """
    if os.name != "posix":
        return
    st = path.stat()
    kind = "folder" if stat.S_ISDIR(st.st_mode) else "file"
    risk = (
        "a compiled library in the TVM cache is native code that is loaded and run, so the cache must be "
        "writable by you alone"
    )
    if st.st_uid != os.getuid():
        raise RuntimeError(
            f"refusing to use the TVM cache {kind} {path}: it belongs to {_owner(st.st_uid)}, not to you "
            f"({_owner(os.getuid())}); {risk}. Fix: use a cache folder of your own (cache_dir=..., "
            "--cache-dir or UNIVERSEG_PLUS_CACHE), or remove this one and let compile create it"
        )
    writers = [who for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if st.st_mode & bit]
    if writers:
        fix = f"chmod 700 {path}" if kind == "folder" else f"chmod go-w {path}"
        raise RuntimeError(
            f"refusing to use the TVM cache {kind} {path}: it is writable by {' and '.join(writers)} "
            f"(mode {stat.S_IMODE(st.st_mode):o}); {risk}. Fix: `{fix}`, or use another cache folder "
            "(cache_dir=..., --cache-dir or UNIVERSEG_PLUS_CACHE)"
        )


def make_private_dirs(path: Path) -> Path:
    """Create ``path`` and each missing parent with mode ``0o700`` (folders that exist are left as they are)."""
    target = Path(path)
    missing, folder = [], target
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    return target


def private_cache_dir(cache_dir: Path) -> Path:
    """``cache_dir``, created with mode ``0o700`` (and its missing parents) when missing, after :func:`check_private`."""
    cache_dir = Path(cache_dir)
    make_private_dirs(cache_dir)
    check_private(cache_dir)
    return cache_dir


def weights_digest(model: nn.Module) -> str:
    """sha256 over the state_dict: names, dtypes, shapes and bytes, in key order."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def cache_key(**parts: Any) -> str:
    """A hex key from JSON-serialisable parts (weights digest, config, shapes, level, target, versions)."""
    text = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    return cache_dir / f"{key}.so", cache_dir / f"{key}.json"


def _discard(cache_dir: Path, key: str, why: str) -> None:
    log.warning("TVM cache entry %s in %s is %s: rebuilding it", key, cache_dir, why)
    for p in _paths(cache_dir, key):
        p.unlink(missing_ok=True)


def load_entry(cache_dir: Path, key: str) -> Any | None:
    """The cached ``tvm.runtime.Module`` for ``key``, or ``None`` (missing, stale or corrupt).

    Raises:
        RuntimeError: the folder or the entry's files could have been written by another user
            (see :func:`check_private`); nothing is loaded.
    """
    private_cache_dir(cache_dir)
    import tvm

    lib_path, meta_path = _paths(cache_dir, key)
    if not meta_path.exists():
        if lib_path.exists():
            _discard(cache_dir, key, "incomplete (no metadata)")
        return None
    try:
        meta = json.loads(meta_path.read_text())
        ok = meta.get("key") == key and meta.get("format") == CACHE_FORMAT
        sha = meta.get("sha256")
    except (OSError, ValueError, AttributeError):
        ok, sha = False, None
    if not ok:
        _discard(cache_dir, key, "unreadable or stale")
        return None
    if not lib_path.exists() or sha256_file(lib_path) != sha:
        _discard(cache_dir, key, "corrupt (library missing or its sha256 differs)")
        return None
    for path in (meta_path, lib_path):
        check_private(path)
    try:
        return tvm.runtime.load_module(str(lib_path))
    except Exception as exc:  # a library that passes the hash but not the loader: rebuild
        _discard(cache_dir, key, f"not loadable ({exc})")
        return None


def store_entry(cache_dir: Path, key: str, executable: Any, info: dict[str, Any]) -> Path:
    """Write ``executable.export_library`` and its metadata atomically (mode ``0o600``); returns the library path.

    Raises:
        RuntimeError: the folder could be written by another user (see :func:`check_private`).
    """
    private_cache_dir(cache_dir)
    lib_path, meta_path = _paths(cache_dir, key)
    with atomic_path(lib_path) as tmp_lib:
        executable.export_library(str(tmp_lib))
        sha = sha256_file(tmp_lib)
    os.chmod(lib_path, 0o600)  # atomic_path applies the umask, which may leave it group-writable
    meta = {"key": key, "format": CACHE_FORMAT, "sha256": sha, **info}
    atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True, default=str))
    os.chmod(meta_path, 0o600)
    return lib_path
