"""Downloading one pinned file over HTTP(S) (or ``file://``): streamed, bounded, verified before it is kept.

The file is written under a temporary name next to its destination and only renamed into place
once its git blob id (and size, when pinned) match; a file that does not match is deleted and the
error names it, the address and both ids.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .._version import __version__
from ..io.atomic import atomic_path

__all__ = ["DownloadError", "MAX_UNPINNED_BYTES", "VerifiedFile", "download_pinned", "offline_reason"]

log = logging.getLogger(__name__)

#: Downloads without a pinned size stop here (the official checkpoint is under 5 MB).
MAX_UNPINNED_BYTES = 64 << 20
_CHUNK = 1 << 16
_TIMEOUT_S = 60.0


class DownloadError(OSError):
    """The address could not be reached or answered with an error (offline, blocked, 404, ...)."""


@dataclass(frozen=True)
class VerifiedFile:
    """A downloaded file that matched its pin.

    Attributes:
        path: Where it was kept.
        url: Where it came from.
        size: Its size in bytes.
        git_blob_id: Its git object id (equal to the pin).
        sha256: Its SHA-256 (recorded, so that what was verified can be named later).
    """

    path: Path
    url: str
    size: int
    git_blob_id: str
    sha256: str


def offline_reason(local_files_only: bool = False) -> str | None:
    """Why no download may be tried (``local_files_only``, or ``HF_HUB_OFFLINE=1``, the offline switch
    this library already honours for the hub), else ``None``."""
    if local_files_only:
        return "local_files_only=True"
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true"):
        return "offline mode is on (HF_HUB_OFFLINE=1)"
    return None


def _progress(total: int | None, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"download {name}", leave=False)


def download_pinned(url: str, dest: str | os.PathLike, git_blob_id: str, size: int | None = None) -> VerifiedFile:
    """Fetch ``url`` into ``dest`` and keep it only if it is the pinned file.

    Args:
        url: ``http(s)://`` or ``file://`` address.
        dest: Where the verified file goes (parent folders are created; replaced if present).
        git_blob_id: Expected ``sha1(b"blob <size>\\0" + bytes)``, 40 hex.
        size: Expected size in bytes, if known; without it at most :data:`MAX_UNPINNED_BYTES` are read.

    Raises:
        DownloadError: unreachable, refused, timed out or an HTTP error (names the address and the reason).
        ValueError: the bytes are not the pinned file: refused, deleted, and named with both ids.
    """
    dest = Path(dest)
    limit = size if size is not None else MAX_UNPINNED_BYTES
    request = urllib.request.Request(url, headers={"User-Agent": f"universeg_plus/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)  # noqa: S310 - the bytes are verified below
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url} could not be reached ({reason})") from None
    with response, atomic_path(dest) as tmp:
        announced = response.headers.get("Content-Length")
        if size is not None and announced is not None and announced.isdigit() and int(announced) != size:
            raise ValueError(
                f"refused {url}: the server announces {int(announced):,} bytes, the pinned file has {size:,}; "
                f"nothing was kept in {dest.parent}"
            )
        total = int(announced) if announced and announced.isdigit() else size
        sha256 = hashlib.sha256()
        n = 0
        try:
            with open(tmp, "wb") as f, _progress(total, dest.name) as bar:
                while chunk := response.read(_CHUNK):
                    n += len(chunk)
                    if n > limit:
                        raise ValueError(
                            f"refused {url}: more than {limit:,} bytes (the pinned file "
                            + (f"has {size:,})" if size is not None else "is far smaller)")
                            + f"; the partial download of {dest.name} was deleted"
                        )
                    f.write(chunk)
                    sha256.update(chunk)
                    bar.update(len(chunk))
        except (TimeoutError, OSError) as exc:
            raise DownloadError(f"{url}: the download broke off after {n:,} bytes ({exc})") from None
        blob = hashlib.sha1(b"blob %d\0" % n)
        with open(tmp, "rb") as f:
            for piece in iter(lambda: f.read(1 << 20), b""):
                blob.update(piece)
        actual = blob.hexdigest()
        if actual != git_blob_id.lower() or (size is not None and n != size):
            raise ValueError(
                f"refused {dest} downloaded from {url}: it is not the pinned file (git blob id {actual}, "
                f"{n:,} bytes; expected {git_blob_id.lower()}"
                + (f", {size:,} bytes" if size is not None else "")
                + "). It was deleted and not loaded: the address serves other bytes than the release (a "
                "tampered mirror, an error page or a different file)."
            )
    log.info("downloaded %s (%d bytes, git blob %s) from %s", dest, n, actual, url)
    return VerifiedFile(dest, url, n, actual, sha256.hexdigest())
