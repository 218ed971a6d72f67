"""Downloads for the public tasks: cached on disk, sha256-checked where the manifest pins one, atomic.

URLs in the manifest are templates over three mirrors (``{github}``, ``{pypi}``, ``{debian}``), so a
site behind its own mirror, or a test server on 127.0.0.1, can replace any of them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from ...io.atomic import atomic_path

__all__ = ["DEFAULT_MIRRORS", "Fetcher", "github_url"]

log = logging.getLogger(__name__)

DEFAULT_MIRRORS = {
    "github": "https://raw.githubusercontent.com",
    "pypi": "https://files.pythonhosted.org",
    "debian": "https://deb.debian.org/debian",
}


def github_url(repo: str, commit: str, path: str) -> str:
    """The ``{github}`` template of one file of ``repo`` at ``commit``."""
    return "{github}/" + "/".join(urllib.parse.quote(part) for part in (*repo.split("/"), commit, *path.split("/")))


class Fetcher:
    """Downloads URLs into ``cache`` (one file per URL; a second request reads the file).

    Args:
        cache: Folder for downloaded files.
        mirrors: Overrides of :data:`DEFAULT_MIRRORS` (``{"github": "http://127.0.0.1:8000/gh"}``).
        retries: Attempts per URL for network errors (HTTP 404 is final).
        timeout: Seconds per attempt.
    """

    def __init__(
        self, cache: str | os.PathLike, mirrors: Mapping[str, str] | None = None, retries: int = 3,
        timeout: float = 60.0,
    ) -> None:
        unknown = set(mirrors or {}) - set(DEFAULT_MIRRORS)
        if unknown:
            raise ValueError(f"unknown mirror {sorted(unknown)}; known: {', '.join(DEFAULT_MIRRORS)}")
        self.cache = Path(cache)
        self.mirrors = {**DEFAULT_MIRRORS, **{k: v.rstrip("/") for k, v in (mirrors or {}).items()}}
        self.retries = max(1, int(retries))
        self.timeout = timeout

    def url(self, template: str) -> str:
        """``template`` with the mirrors filled in."""
        return template.format(**self.mirrors)

    def _cache_path(self, url: str) -> Path:
        parts = urllib.parse.urlsplit(url)
        rel = urllib.parse.unquote(parts.path).lstrip("/")
        return self.cache / (parts.hostname or "local") / (str(parts.port) if parts.port else "") / rel

    def get(self, template: str, sha256: str | None = None) -> Path:
        """The local copy of ``template``'s URL, downloading it if it is not cached.

        Raises:
            FileNotFoundError: the server answers 404 (the message names the URL).
            RuntimeError: another HTTP or network error after all retries, or a sha256 mismatch.
        """
        url = self.url(template)
        dest = self._cache_path(url)
        if dest.is_file() and (sha256 is None or _sha256(dest) == sha256):
            return dest
        for attempt in range(1, self.retries + 1):
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as resp, atomic_path(dest) as tmp:
                    with open(tmp, "wb") as f:
                        while chunk := resp.read(1 << 20):
                            f.write(chunk)
                break
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    raise FileNotFoundError(f"not found (HTTP 404): {url}") from exc
                error: Exception = exc
            except (urllib.error.URLError, OSError) as exc:
                error = exc
            if attempt == self.retries:
                raise RuntimeError(f"cannot download {url}: {error}") from error
            log.info("retrying %s after: %s", url, error)
            time.sleep(min(2.0 * attempt, 10.0))
        if sha256 is not None:
            got = _sha256(dest)
            if got != sha256:
                dest.unlink()
                raise RuntimeError(f"sha256 mismatch for {url}: expected {sha256}, got {got}")
        return dest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
