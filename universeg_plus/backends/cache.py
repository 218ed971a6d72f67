"""On-disk cache of compiled libraries: keyed by everything that changes the code, written atomically.

An entry is ``<key>.so`` (``export_library``) plus ``<key>.json`` (its sha256 and what it was built
from), the JSON written last. An entry is trusted only when the JSON parses, names this key and the
library's sha256 matches; anything else is deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io.atomic import atomic_path, atomic_write_text
from ..io.hashing import sha256_file

__all__ = ["CACHE_FORMAT", "cache_key", "default_cache_dir", "load_entry", "store_entry", "weights_digest"]

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the key or entry layout changes


def default_cache_dir() -> Path:
    """``$UNIVERSEG_PLUS_CACHE/tvm``, else ``$XDG_CACHE_HOME/universeg_plus/tvm`` (``~/.cache``)."""
    root = os.environ.get("UNIVERSEG_PLUS_CACHE")
    if root:
        return Path(root) / "tvm"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "universeg_plus" / "tvm"


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
    """The cached ``tvm.runtime.Module`` for ``key``, or ``None`` (missing, stale or corrupt)."""
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
    try:
        return tvm.runtime.load_module(str(lib_path))
    except Exception as exc:  # a library that passes the hash but not the loader: rebuild
        _discard(cache_dir, key, f"not loadable ({exc})")
        return None


def store_entry(cache_dir: Path, key: str, executable: Any, info: dict[str, Any]) -> Path:
    """Write ``executable.export_library`` and its metadata atomically; returns the library path."""
    lib_path, meta_path = _paths(cache_dir, key)
    with atomic_path(lib_path) as tmp_lib:
        executable.export_library(str(tmp_lib))
        sha = sha256_file(tmp_lib)
    meta = {"key": key, "format": CACHE_FORMAT, "sha256": sha, **info}
    atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True, default=str))
    return lib_path
