"""NIfTI volumes (nibabel, imported lazily): read, slice along an axis, write label volumes atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from .errors import UnreadableFile

__all__ = ["label_dtype", "read_nifti", "volume_slices", "write_nifti", "write_label_nifti"]


def _nib():
    try:
        import nibabel
    except ImportError as exc:  # pragma: no cover - nibabel is a core dependency
        raise ImportError('NIfTI support needs nibabel: pip install "universeg-plus"') from exc
    return nibabel


def read_nifti(path: str | os.PathLike) -> tuple[np.ndarray, Any]:
    """Read a NIfTI file.

    Returns:
        ``(data, image)``: the voxel array (raw integers when the file stores unscaled integers,
        else float64 from ``get_fdata``) and the nibabel image (affine and header) to pass to
        :func:`write_label_nifti`.

    Raises:
        FileNotFoundError: missing file.
        ValueError: not a readable NIfTI file (the message names the file).
    """
    nib = _nib()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}")
    try:
        img = nib.load(str(p))
        slope, inter = img.dataobj.slope, img.dataobj.inter
        raw_int = np.dtype(img.get_data_dtype()).kind in "iub" and slope == 1 and inter == 0
        data = np.asarray(img.dataobj) if raw_int else img.get_fdata()
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise UnreadableFile(p, f"not a readable NIfTI file ({exc})") from exc
    if data.dtype.kind not in "biuf":
        raise UnreadableFile(p, f"expected numeric voxels, got dtype {data.dtype}")
    return data, img


def volume_slices(volume: np.ndarray, axis: int) -> np.ndarray:
    """Move ``axis`` of a 3D ``volume`` first: ``(D, H, W)``, slice ``k`` is ``np.take(volume, k, axis)``."""
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"expected a 3D volume, got shape {vol.shape}")
    if not -3 <= axis < 3:
        raise ValueError(f"axis must be 0, 1 or 2 for a 3D volume, got {axis}")
    return np.moveaxis(vol, axis, 0)


def label_dtype(labels: np.ndarray) -> np.dtype:
    """Smallest unsigned/signed integer dtype holding ``labels``."""
    lo = int(labels.min()) if labels.size else 0
    hi = int(labels.max()) if labels.size else 0
    for dt in (np.uint8, np.uint16, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def write_label_nifti(path: str | os.PathLike, labels: np.ndarray, reference: Any | None = None) -> Path:
    """Write an integer label volume atomically, keeping the reference image's affine and header.

    Args:
        path: Destination (``.nii`` or ``.nii.gz``).
        labels: Integer label array with the reference's spatial shape.
        reference: The nibabel image it was predicted from (from :func:`read_nifti`); ``None``
            writes an identity affine.

    Returns:
        The destination path. The stored dtype is the smallest integer type holding the labels, with
        no intensity scaling (slope 1, intercept 0).
    """
    nib = _nib()
    lab = np.asarray(labels)
    if lab.dtype.kind == "f":
        if not np.isfinite(lab).all() or not np.array_equal(lab, np.round(lab)):
            raise ValueError("labels must be integers")
    elif lab.dtype.kind not in "iub":
        raise TypeError(f"labels must be an integer array, got dtype {lab.dtype}")
    dtype = label_dtype(lab)
    lab = lab.astype(dtype)
    if reference is not None:
        if tuple(reference.shape[: lab.ndim]) != lab.shape:
            raise ValueError(f"labels shape {lab.shape} does not match the reference image shape {reference.shape}")
        header = reference.header.copy()
        img = type(reference)(lab, reference.affine, header)
    else:
        img = nib.Nifti1Image(lab, np.eye(4))
    img.set_data_dtype(dtype)
    img.header.set_slope_inter(1.0, 0.0)
    return write_nifti(path, img)


def write_nifti(path: str | os.PathLike, image: Any) -> Path:
    """Save a nibabel image atomically (temporary file in the destination folder, then rename)."""
    nib = _nib()
    dest = Path(path)
    if not dest.name.lower().endswith((".nii", ".nii.gz")):
        raise ValueError(f"NIfTI output must end in .nii or .nii.gz, got {dest.name}")
    with atomic_path(dest) as tmp:
        nib.save(image, str(tmp))
    return dest
