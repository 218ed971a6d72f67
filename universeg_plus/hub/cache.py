"""Where downloaded weights live on the user's machine.

``$UNIVERSEG_PLUS_CACHE`` when set, else ``$XDG_CACHE_HOME/universeg_plus``, else
``~/.cache/universeg_plus``. (Weights from the Hugging Face Hub stay in huggingface_hub's own cache.)
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "user_cache_dir"]

CACHE_ENV = "UNIVERSEG_PLUS_CACHE"


def user_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache_dir`` when given, else as the module docstring says (not created here)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "universeg_plus"
