"""The error the readers raise for a file that exists but cannot be read (shared by images and NIfTI)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["UnreadableFile"]


class UnreadableFile(ValueError):
    """A file that exists but cannot be read as an image or volume.

    Attributes:
        path: The file.
        reason: Why, in the reader's words.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = str(reason)
        super().__init__(f"cannot read {self.path}: {self.reason}")
