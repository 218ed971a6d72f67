"""The demo's uploads: support pairs, the target (a 2D image or one slice of a volume) and its reference mask.

Every rule of what an image, a mask or a volume is comes from :mod:`universeg_plus.io.inputs`; uploads
are passed as :class:`~universeg_plus.io.inputs.Named` inputs, so every message names a file by its
own name, never by gradio's temporary path. What is left here is the upload flow: pairing files in
file-name order, which slice of a volume to show, and matching the reference to the target.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.images import file_stem
from ..io.inputs import MAX_LABELS, Named, as_label_map, binary_from_255, image_array, read_input, take_slice
from ..support import SupportSet

__all__ = ["MAX_MASK_LABELS", "Target", "load_reference", "load_support", "load_target", "support_pairs"]

#: A mask with more labels than this is taken for an image uploaded by mistake.
MAX_MASK_LABELS = MAX_LABELS


def _paths(files: Sequence[str | os.PathLike] | str | os.PathLike | None, what: str) -> list[Path]:
    if files is None:
        return []
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    out = []
    for f in files:
        if not isinstance(f, (str, os.PathLike)):
            raise TypeError(f"{what} must be file paths, got {type(f).__name__}")
        out.append(Path(f))
    return out


def _named(path: Path) -> Named:
    return Named(path, path.name)


def support_pairs(
    image_files: Sequence[str | os.PathLike] | None, mask_files: Sequence[str | os.PathLike] | None
) -> tuple[list[Named], list[Named]]:
    """The uploaded support images and masks as :class:`Named` files, paired in file-name order.

    Raises:
        ValueError: no files, or counts that differ.
    """
    images = sorted(_paths(image_files, "support images"), key=lambda p: p.name)
    masks = sorted(_paths(mask_files, "support masks"), key=lambda p: p.name)
    if not images and not masks:
        raise ValueError("no support examples: upload support images and their masks, or load an example task")
    if len(images) != len(masks):
        raise ValueError(
            f"got {len(images)} support image(s) but {len(masks)} mask(s): upload exactly one mask per image "
            "(they are paired in file-name order)"
        )
    return [_named(p) for p in images], [_named(p) for p in masks]


def load_support(
    image_files: Sequence[str | os.PathLike] | None,
    mask_files: Sequence[str | os.PathLike] | None,
    size: Sequence[int],
) -> SupportSet:
    """Build the support set from uploaded files, paired in file-name order.

    Args:
        image_files: Support image files (PNG/JPEG/TIFF/BMP/NPY/2D NIfTI).
        mask_files: Their masks, one per image; sorted by file name, like the images, and paired in
            that order (so ``a.png`` goes with ``a.png`` or with ``a_mask.png``).
        size: The model input size ``(H, W)``.

    Returns:
        The :class:`SupportSet` at ``size``.

    Raises:
        ValueError: no files, counts that differ, unreadable files, an image and its mask of
            different sizes, masks that are not masks, or no foreground in any mask.
    """
    images, masks = support_pairs(image_files, mask_files)
    return check_foreground(SupportSet.from_arrays(images, masks, size=size, max_labels=MAX_MASK_LABELS))


def check_foreground(support: SupportSet) -> SupportSet:
    """``support``, or ValueError when none of its masks has foreground."""
    if not support.classes:
        raise ValueError("none of the support masks has any foreground: there is nothing to learn to segment")
    return support


@dataclass
class Target:
    """The image to segment, and where it came from.

    Attributes:
        image: ``(H, W)`` or ``(H, W, 3)`` array as read (one slice for volumes).
        name: The upload's file stem.
        volume_shape: Shape of the source volume, or ``None`` for a 2D image.
        axis: Slicing axis of a volume.
        index: The slice taken from a volume.
        nifti: The nibabel image of a NIfTI upload (its grid is used for the NIfTI mask), else ``None``.
    """

    image: np.ndarray
    name: str
    volume_shape: tuple[int, ...] | None = None
    axis: int = 2
    index: int | None = None
    nifti: Any | None = None

    @property
    def is_slice(self) -> bool:
        """Whether the image is one slice of a volume."""
        return self.volume_shape is not None

    def describe(self) -> str:
        """One line: name, size and (for volumes) which slice."""
        h, w = self.image.shape[:2]
        if self.is_slice:
            return (
                f"{self.name}: slice {self.index} along axis {self.axis} of a volume of shape "
                f"{tuple(self.volume_shape)} ({h}x{w} px)"
            )
        return f"{self.name}: {h}x{w} px"




def load_target(path: str | os.PathLike | None, slice_index: int | None = None, axis: int = 2) -> Target:
    """Read the target upload; for a volume (NIfTI or 3D ``.npy``) take one slice.

    Args:
        path: The uploaded file.
        slice_index: Slice of a volume to segment (``None``: the middle one); ignored for 2D images.
        axis: Slicing axis of a volume (0, 1 or 2).

    Raises:
        ValueError: no file, unreadable file, 4D data, a slice index or axis out of range, an image the
            model cannot take (see :mod:`universeg_plus.io.inputs`).
    """
    if path is None:
        raise ValueError("no target: upload the image to segment (or load an example task)")
    p = Path(path)
    src = read_input(_named(p), "target")
    if not src.is_volume:
        image_array(Named(src.data, p.name), "target")  # refuse what the predictor would refuse, by name
        return Target(src.data, file_stem(p), nifti=src.nifti)
    image, index = take_slice(src.data, axis, slice_index, kind="target volume", where=p.name)
    return Target(image, file_stem(p), tuple(src.data.shape), int(axis), index, src.nifti)


def _hw(shape: Sequence[int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def load_reference(path: str | os.PathLike | None, target: Target) -> np.ndarray | None:
    """Read the optional reference mask of ``target`` as an ``(H, W)`` integer label map.

    For a volume target the reference may be the label volume (the same slice is taken) or the
    slice's 2D mask. 8-bit binary masks stored as 0/255 are read as 0/1.

    Raises:
        ValueError: unreadable file, not a mask, or a size that differs from the target's.
    """
    if path is None:
        return None
    p = Path(path)
    data = read_input(_named(p), "reference mask").data
    if target.is_slice and data.ndim == 3 and tuple(data.shape) == tuple(target.volume_shape):
        data = take_slice(data, target.axis, target.index, kind="reference volume", where=p.name)[0]
    labels = as_label_map(Named(data, p.name), kind="reference mask", max_labels=MAX_MASK_LABELS)
    if labels.shape != target.image.shape[:2]:
        raise ValueError(
            f"the reference mask {p.name} is {_hw(labels.shape)} pixels but the target is "
            f"{_hw(target.image.shape)}: it must be the target's own mask"
        )
    return binary_from_255([labels])[0]
