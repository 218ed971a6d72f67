"""Files to segment: volumes, slices, and what a file is (2D image or 3D volume) with its output suffixes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checks import Named, _name, as_count, describe
from .image_rules import _read

__all__ = ["InputFile", "output_name", "output_suffix", "read_input", "take_slice", "volume_array"]


def _squeeze_trailing(arr: np.ndarray) -> np.ndarray:
    while arr.ndim > 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


def volume_array(x: Any, kind: str = "volume", where: str = "") -> np.ndarray:
    """A 3D volume ``(X, Y, Z)`` from a NIfTI/NPY path, array, tensor or :class:`Named` (as stored).

    Raises:
        ValueError: not 3D after squeezing trailing singleton axes, or empty.
        TypeError: non-numeric data or an unsupported type.
    """
    if isinstance(x, Named) and isinstance(x.value, (str, os.PathLike)):
        arr = _read(Path(x.value), kind, where or x.name, hide_path=True)[0]
        return _checked_volume(arr, kind, where or x.name)
    if isinstance(x, Named):
        return volume_array(x.value, kind, where or x.name)
    where = where or describe(x)
    if isinstance(x, (str, os.PathLike)):
        arr = _read(Path(x), kind, where)[0]
    elif isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        arr = (t.float() if t.dtype in (torch.bfloat16, torch.float16) else t).numpy()
    elif isinstance(x, np.ndarray):
        arr = x
    else:
        raise TypeError(f"{_name(kind, where)} must be a numpy array, torch tensor or file path, got {type(x).__name__}")
    return _checked_volume(arr, kind, where)


def _checked_volume(arr: np.ndarray, kind: str, where: str) -> np.ndarray:
    arr = _squeeze_trailing(np.asarray(arr))
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{_name(kind, where)} must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 3:
        raise ValueError(f"{_name(kind, where)} must be a 3D volume (X, Y, Z), got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{_name(kind, where)} is empty: shape {arr.shape}")
    return arr


def take_slice(
    volume: np.ndarray, axis: int, index: int | None = None, *, kind: str = "volume", where: str = ""
) -> tuple[np.ndarray, int]:
    """Slice ``index`` (default: the middle one) of a 3D ``volume`` along ``axis``: ``(slice, index)``.

    Raises:
        ValueError: an axis other than 0, 1, 2 or an index out of range (the message gives the range).
    """
    from .nifti import volume_slices

    axis = as_count(axis, "the slicing axis", 0, 2)
    slices = volume_slices(volume, axis)
    depth = slices.shape[0]
    index = depth // 2 if index is None else as_count(index, "the slice index", 0)
    if index >= depth:
        raise ValueError(
            f"slice index {index} is out of range: the {_name(kind, where)} has {depth} slices along axis {axis} "
            f"(0..{depth - 1})"
        )
    return np.asarray(slices[index]), index


@dataclass
class InputFile:
    """A file to segment, as read: a 2D image or a 3D volume.

    Attributes:
        data: ``(H, W)`` / ``(H, W, 3)`` image or ``(X, Y, Z)`` volume, values as stored.
        path: Where it was read from.
        name: Its name in messages (the file name, or a :class:`Named` name).
        is_volume: Whether ``data`` is a volume.
        nifti: The nibabel image of a NIfTI file (affine and header for the output), else ``None``.
    """

    data: np.ndarray
    path: Path
    name: str
    is_volume: bool
    nifti: Any | None = None

    @property
    def output_suffixes(self) -> tuple[str, ...]:
        """Suffixes a label output of this input may have; the first is the default (same kind of file)."""
        return _output_suffixes(self.nifti is not None, self.is_volume)


def _output_suffixes(nifti: bool, volume: bool) -> tuple[str, ...]:
    if volume:
        return (".nii.gz", ".nii", ".npy") if nifti else (".npy", ".nii.gz", ".nii")
    return (".nii.gz", ".nii", ".png", ".npy") if nifti else (".png", ".npy")


def _is_volume_shape(shape: tuple[int, ...], path: Path) -> bool:
    from .images import is_volume

    return is_volume(np.broadcast_to(np.uint8(0), shape), path)


def read_input(x: str | os.PathLike | Named, kind: str = "target") -> InputFile:
    """Read a file to segment and decide what it is (2D image or 3D volume).

    NIfTI files keep their nibabel image; a NIfTI ``(X, Y, 1)`` is a 2D image ``(X, Y)``. Other files
    are volumes when :func:`universeg_plus.io.images.is_volume` says so (3D NPY without a channel axis).

    Raises:
        FileNotFoundError: missing file. ValueError: unreadable, or not 2D/3D (named).
    """
    from .images import NIFTI_SUFFIXES

    where = x.name if isinstance(x, Named) else ""
    path = Path(x.value if isinstance(x, Named) else x)
    name = where or path.name
    arr, nifti = _read(path, kind, name, hide_path=bool(where))
    arr = _squeeze_trailing(np.asarray(arr))
    is_nifti = path.name.lower().endswith(NIFTI_SUFFIXES)
    if is_nifti and arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"the {kind} {name} has shape {arr.shape}: only 2D images and 3D volumes are supported"
        )
    volume = arr.ndim == 3 and (is_nifti or _is_volume_shape(arr.shape, path))
    return InputFile(arr, path, name, volume, nifti)


def output_suffix(path: str | os.PathLike) -> str:
    """The default label-output suffix for input ``path`` (reads only an NPY header, nothing else).

    ``.nii.gz`` for NIfTI, ``.npy`` for 3D NPY volumes, ``.png`` for 2D images: what
    :func:`read_input` followed by ``InputFile.output_suffixes[0]`` gives.

    Raises:
        ValueError: an unreadable NPY header.
    """
    from .images import NIFTI_SUFFIXES

    p = Path(path)
    if p.name.lower().endswith(NIFTI_SUFFIXES):
        return ".nii.gz"
    if p.suffix.lower() == ".npy":
        try:
            shape = np.load(p, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the target {p.name}: {exc}") from exc
        squeezed = _squeeze_trailing(np.broadcast_to(np.uint8(0), shape)).shape
        return _output_suffixes(False, len(squeezed) == 3 and _is_volume_shape(squeezed, p))[0]
    return ".png"


def output_name(path: str | os.PathLike) -> str:
    """The default label-output file name of input ``path``: ``<stem><output_suffix>``.

    An NPY whose header cannot be read gets ``.png`` here; segmenting it reports the error.
    """
    from .images import file_stem

    try:
        suffix = output_suffix(path)
    except ValueError:
        suffix = ".png"
    return f"{file_stem(path)}{suffix}"
