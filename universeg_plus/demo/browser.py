"""A headless Chromium for looking at the demo page (screenshots, browser tests), kept off the network.

Playwright drives Debian's ``chromium`` or ``chromium-headless-shell`` (apt packages), found on the
PATH or named by ``$UNIVERSEG_PLUS_CHROMIUM``. Playwright starts it with a fresh, empty profile
directory and ``--headless``; :data:`CHROMIUM_ARGS` resolves every host name except 127.0.0.1 to
nothing and turns off the browser's own background traffic.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM_ARGS", "CHROMIUM_ENV", "find_chromium", "launch_chromium"]

CHROMIUM_ENV = "UNIVERSEG_PLUS_CHROMIUM"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
_NAMES = ("chromium", "chromium-headless-shell")


def find_chromium() -> Path | None:
    """``$UNIVERSEG_PLUS_CHROMIUM`` when set (it must exist), else the first of ``chromium`` and
    ``chromium-headless-shell`` on the PATH, else ``None``.

    Raises:
        FileNotFoundError: ``$UNIVERSEG_PLUS_CHROMIUM`` names a missing file.
    """
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        if not Path(named).is_file():
            raise FileNotFoundError(f"{CHROMIUM_ENV}={named} does not exist")
        return Path(named)
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def launch_chromium(playwright: Any, executable: str | os.PathLike | None = None) -> Any:
    """Launch headless Chromium through ``playwright`` (``sync_playwright()`` object) with :data:`CHROMIUM_ARGS`.

    Raises:
        FileNotFoundError: no Chromium found (names the packages and the environment variable).
    """
    path = Path(executable) if executable is not None else find_chromium()
    if path is None:
        raise FileNotFoundError(
            f"no Chromium found: apt-get install chromium-headless-shell (or chromium), or set {CHROMIUM_ENV}"
        )
    return playwright.chromium.launch(executable_path=str(path), headless=True, args=CHROMIUM_ARGS)
