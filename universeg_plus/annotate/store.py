"""An annotation session's folder: the lock, the session file and the accepted masks, written atomically.

Layout of a session folder::

    session.json        what was done: items, their state, edits, times, the model (see SessionFile)
    session.lock        held (flock) while a session has the folder open; it names the holder's pid
    masks/<item>.png    each accepted label map, written before session.json records it

Order of writes on accept: the mask PNG (atomic), then ``session.json`` (atomic). A process killed
between the two leaves a mask file that the session file does not name: the item is still pending
and its next accept overwrites the file. Nothing the session file names is ever half-written.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..io.atomic import atomic_write_text, clean_stale_partials
from ..io.images import read_image, write_png

__all__ = ["ItemRecord", "SessionFile", "SessionLocked", "SessionStore"]

log = logging.getLogger(__name__)

FORMAT = "universeg-plus-annotation"
VERSION = 1
ItemState = Literal["pending", "accepted", "skipped"]


class SessionLocked(RuntimeError):
    """Another open session holds the folder."""


class ItemRecord(BaseModel):
    """One item of the dataset and what happened to it.

    Attributes:
        name: Unique item name (file stem, or ``<volume>_<axis>_<slice>``).
        state: ``pending``, ``accepted`` or ``skipped``.
        mask: The accepted label map, relative to the session folder (accepted items only).
        edited: Whether the accepted mask differs from the proposal shown.
        edit_pixels: Pixels changed between the proposal and the accepted mask.
        edit_cost: ``edit_pixels`` over the mask's foreground, capped at 1.0 (drawing costs 1.0).
        seconds: Time from the proposal being shown to the answer.
        proposal: What proposed the mask: ``none`` (empty support), ``in-context`` or ``adapted``.
        support: Accepted items in the support set when the proposal was made.
        step: Position in the order of answers (1, 2, ...); ``None`` while pending.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    state: ItemState = "pending"
    mask: str | None = None
    edited: bool | None = None
    edit_pixels: int | None = Field(None, ge=0)
    edit_cost: float | None = Field(None, ge=0, le=1)
    seconds: float | None = Field(None, ge=0)
    proposal: str | None = None
    support: int | None = Field(None, ge=0)
    step: int | None = Field(None, ge=1)


class SessionFile(BaseModel):
    """The content of ``session.json``.

    Attributes:
        format, version: What this file is (checked on open).
        source: Where the items come from: ``{"kind": "images", "paths": [...]}``, ``{"kind": "volume",
            "path": ..., "axis": 2}`` or ``{"kind": "arrays"}`` (the caller passes the same arrays again).
        model: ``{"name": ..., "weights_sha256": ...}`` of the network that made the proposals.
        order: ``in-order``, ``uncertain`` or ``spread``.
        colour: How RGB items became grey for the proposals, fixed at session start: ``"luma"``,
            ``"fisher"``, ``"auto"`` (refitted on the accepted items at every change) or a fixed
            projection (``ColourProjection.as_dict()``). Files without it are ``"luma"`` sessions.
        items: One record per item, in the source's order.
        created, updated: Unix times.
    """

    model_config = ConfigDict(extra="forbid")

    format: Literal["universeg-plus-annotation"] = FORMAT
    version: int = VERSION
    source: dict[str, Any]
    model: dict[str, Any]
    order: str = "in-order"
    colour: Literal["luma", "fisher", "auto"] | dict[str, Any] = "luma"
    items: list[ItemRecord]
    created: float = Field(default_factory=time.time)
    updated: float = Field(default_factory=time.time)


def _lock_file(handle: Any) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not Linux/macOS: the lock file's existence is the lock
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class SessionStore:
    """Owns one session folder while open: takes the lock, reads and writes ``session.json`` and masks.

    Args:
        folder: The session folder (created if missing).

    Raises:
        SessionLocked: another session (this process or another) has the folder open; the message
            names the holder.
    """

    FILE = "session.json"
    LOCK = "session.lock"
    MASKS = "masks"

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise NotADirectoryError(f"session folder {self.folder} is a file, not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        lock_path = self.folder / self.LOCK
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held open while the session lives
        if not _lock_file(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise SessionLocked(
                f"session folder {self.folder} is in use by {holder}; close that session first (two sessions "
                "writing one folder would lose answers)"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        self._lock = handle
        clean_stale_partials(self.folder)
        clean_stale_partials(self.folder / self.MASKS)

    @property
    def path(self) -> Path:
        """``session.json``."""
        return self.folder / self.FILE

    def close(self) -> None:
        """Release the lock (idempotent)."""
        if self._lock is not None:
            self._lock.close()  # closing the descriptor releases the flock
            self._lock = None

    @property
    def closed(self) -> bool:
        return self._lock is None

    def _check_open(self) -> None:
        if self._lock is None:
            raise RuntimeError(f"the session on {self.folder} is closed; open it again to change it")

    def read(self) -> SessionFile | None:
        """The session file, or ``None`` when there is none yet.

        Raises:
            ValueError: the file is not a valid session file (the message names it; it is left as it is).
        """
        if not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r}, this library reads version {VERSION}")
            state = SessionFile.model_validate(data)
        except (ValueError, ValidationError, UnicodeDecodeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(
                f"the session file {self.path} is corrupt or not a session file ({reason}); it was left as it is: "
                "restore it, or move it away to start a new session in this folder"
            ) from None
        names = [it.name for it in state.items]
        if len(set(names)) != len(names):
            raise ValueError(f"the session file {self.path} names an item twice; it was left as it is")
        for it in state.items:
            if it.state == "accepted" and (it.mask is None or not (self.folder / it.mask).is_file()):
                raise ValueError(
                    f"the session file {self.path} records item {it.name!r} as accepted but its mask "
                    f"{self.folder / (it.mask or '?')} is missing; restore the file or undo that item"
                )
        return state

    def write(self, state: SessionFile) -> Path:
        """Write ``session.json`` atomically."""
        self._check_open()
        state.updated = time.time()
        return atomic_write_text(self.path, state.model_dump_json(indent=1) + "\n")

    def mask_path(self, name: str) -> str:
        """Where item ``name``'s mask goes, relative to the folder."""
        return f"{self.MASKS}/{name}.png"

    def write_mask(self, name: str, mask: np.ndarray) -> str:
        """Write item ``name``'s label map (PNG, atomically); returns its relative path."""
        self._check_open()
        rel = self.mask_path(name)
        m = np.asarray(mask)
        write_png(self.folder / rel, m.astype(np.uint16 if m.max(initial=0) > 255 else np.uint8))
        return rel

    def read_mask(self, rel: str) -> np.ndarray:
        """A stored label map ``(H, W)`` by its relative path."""
        return np.asarray(read_image(self.folder / rel)).astype(np.int64)

    def remove_mask(self, rel: str) -> None:
        self._check_open()
        (self.folder / rel).unlink(missing_ok=True)
