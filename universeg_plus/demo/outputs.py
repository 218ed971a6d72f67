"""What one Segment click gives back besides the mask: the probability picture, Dice, the files."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.images import write_labels
from ..metrics import dice
from .uploads import Target

__all__ = ["dice_per_label", "probability_image", "safe_stem", "write_outputs"]


def probability_image(probabilities: np.ndarray) -> np.ndarray:
    """Foreground probability for display: ``(H, W)`` or ``(C, H, W)`` float in [0, 1] -> ``(H, W)`` uint8.

    Several classes show the largest class probability per pixel; 0 -> black, 1 -> white.
    """
    p = np.asarray(probabilities, dtype=np.float32)
    if p.ndim == 3:
        p = p.max(axis=0)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be (H, W) or (C, H, W), got shape {p.shape}")
    return np.round(np.clip(p, 0.0, 1.0) * 255.0).astype(np.uint8)


def dice_per_label(mask: np.ndarray, reference: np.ndarray, classes: Sequence[int]) -> dict[int, float]:
    """Dice of ``mask == c`` against ``reference == c`` for each of ``classes``."""
    return {int(c): float(dice(np.asarray(mask) == c, np.asarray(reference) == c)) for c in classes}


def safe_stem(name: str) -> str:
    """``name`` with anything but letters, digits, ``.``, ``_`` and ``-`` replaced (a safe file name)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "target"


def write_outputs(target: Target, mask: np.ndarray, out_dir: Path) -> list[Path]:
    """The mask as ``<stem>_mask.png`` in a fresh subfolder of ``out_dir``, plus ``<stem>_mask.nii.gz`` in the
    NIfTI target's grid (the other slices of a volume are 0)."""
    folder = out_dir / uuid.uuid4().hex[:12]
    stem = safe_stem(target.name)
    files = [write_labels(folder / f"{stem}_mask.png", mask)]
    if target.nifti is not None:
        if target.is_slice:
            labels = np.zeros(target.volume_shape, dtype=mask.dtype)
            np.moveaxis(labels, target.axis, 0)[target.index] = mask
        else:
            labels = mask.reshape(target.nifti.shape[: mask.ndim])
        files.append(write_labels(folder / f"{stem}_mask.nii.gz", labels, target.nifti))
    return files
