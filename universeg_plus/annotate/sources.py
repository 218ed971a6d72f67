"""The items of an annotation session: a folder or list of 2D images, a 3D volume's slices, or arrays."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.images import NIFTI_SUFFIXES, file_stem, is_volume, list_image_files, read_image
from ..io.inputs import Named, as_count, image_array

__all__ = ["Item", "ItemSource", "open_source"]


@dataclass(frozen=True)
class Item:
    """One image to label.

    Attributes:
        index: Position in the source (0-based).
        name: Unique name (file stem, ``<volume>_<axis>_<slice>`` or the array's name).
        slice: The slice index for a volume's items, else ``None``.
    """

    index: int
    name: str
    slice: int | None = None


class ItemSource:
    """Items and their images (read once, kept).

    Attributes:
        items: The items in source order.
        record: What ``session.json`` keeps to check a resumed session opens the same source.
        volume_reference: For a NIfTI volume, the nibabel image (its affine for the written labels).
    """

    def __init__(
        self,
        items: list[Item],
        images: list[Any],
        record: dict[str, Any],
        volume: np.ndarray | None = None,
        axis: int | None = None,
        reference: Any | None = None,
    ) -> None:
        if not items:
            raise ValueError("no items to annotate: the source holds no images")
        self.items = items
        self._images = images
        self.record = record
        self.volume = volume
        self.axis = axis
        self.volume_reference = reference
        self._cache: dict[int, np.ndarray] = {}
        self.keep_rgb = False

    def keep_colour(self) -> None:
        """From now on, :meth:`image` gives RGB items as ``(H, W, 3)`` (for a colour projection), not luma."""
        if not self.keep_rgb:
            self.keep_rgb, self._cache = True, {}

    def __len__(self) -> int:
        return len(self.items)

    @property
    def is_volume(self) -> bool:
        return self.volume is not None

    def image(self, index: int) -> np.ndarray:
        """Item ``index``'s image: ``(H, W)`` (RGB as luma), or ``(H, W, 3)`` for an RGB item after
        :meth:`keep_colour` (checked: 2D, finite)."""
        if index not in self._cache:
            x = self._images[index]
            name = self.items[index].name
            if self.volume is not None:
                x = np.take(self.volume, index, axis=self.axis)
            self._cache[index] = image_array(x, "item", name, keep_rgb=self.keep_rgb)
        return self._cache[index]

    def shape(self, index: int) -> tuple[int, int]:
        return tuple(self.image(index).shape[:2])  # type: ignore[return-value]


def _from_files(paths: Sequence[Path]) -> ItemSource:
    stems = [file_stem(p) for p in paths]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise ValueError(f"two images share the name {dupes[0]!r}: item names (file stems) must be unique")
    items = [Item(i, s) for i, s in enumerate(stems)]
    record = {"kind": "images", "paths": [str(Path(p).resolve()) for p in paths]}
    return ItemSource(items, [str(p) for p in paths], record)


def _from_volume(path: Path, axis: int) -> ItemSource:
    ref = None
    if path.name.lower().endswith(NIFTI_SUFFIXES):
        from ..io.nifti import read_nifti

        vol, ref = read_nifti(path)
    else:
        vol = read_image(path)
    vol = np.asarray(vol)
    while vol.ndim > 3 and vol.shape[-1] == 1:
        vol = vol[..., 0]
    if vol.ndim != 3:
        raise ValueError(f"volume {path} must be 3D (X, Y, Z), got shape {vol.shape}")
    stem = file_stem(path)
    n = vol.shape[axis]
    items = [Item(k, f"{stem}_{axis}_{k:04d}", k) for k in range(n)]
    record = {"kind": "volume", "path": str(path.resolve()), "axis": axis}
    return ItemSource(items, [None] * n, record, volume=vol, axis=axis, reference=ref)


def open_source(source: Any, axis: int = 2) -> ItemSource:
    """Items from ``source``.

    Args:
        source: A folder of 2D images (sorted by name), a list of image files, one 3D volume file
            (NIfTI or ``.npy``: its slices along ``axis``), or a list of arrays/:class:`Named` arrays.
        axis: Slicing axis of a volume (0, 1 or 2).

    Raises:
        FileNotFoundError: a missing folder or file.
        ValueError: nothing to annotate, duplicate names, a volume that is not 3D.
    """
    axis = as_count(axis, "axis", 0, 2)
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            files = list_image_files(p)
            if not files:
                raise ValueError(f"no image files in {p}")
            return _from_files(files)
        if not p.is_file():
            raise FileNotFoundError(f"no such file or folder: {p}")
        if p.name.lower().endswith(NIFTI_SUFFIXES) or (p.suffix.lower() == ".npy" and is_volume(read_image(p), p)):
            return _from_volume(p, axis)
        return _from_files([p])
    if isinstance(source, np.ndarray):
        raise TypeError("an array is ambiguous here: pass a volume as a NIfTI/.npy file, or a list of 2D arrays")
    if not isinstance(source, Sequence) or isinstance(source, (str, bytes)):
        raise TypeError(f"source must be a folder, a file, or a list of files or arrays, got {type(source).__name__}")
    entries = list(source)
    if not entries:
        raise ValueError("no items to annotate: the list is empty")
    if all(isinstance(e, (str, os.PathLike)) for e in entries):
        return _from_files([Path(e) for e in entries])
    names = [e.name if isinstance(e, Named) else f"item_{i:04d}" for i, e in enumerate(entries)]
    if len(set(names)) != len(names):
        raise ValueError("array items need unique names (Named(array, name))")
    items = [Item(i, n) for i, n in enumerate(names)]
    values = [e.value if isinstance(e, Named) else e for e in entries]
    return ItemSource(items, values, {"kind": "arrays", "names": names})
